# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_jail_global_optspecs
    string join \n p/profile= ro= rw= hide= net= allow-domain= allow-port= dns-upstream= env= gpu review= timeout= memory= pids= cpus= dry-run v/verbose q/quiet h/help V/version
end

function __fish_jail_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_jail_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_jail_using_subcommand
    set -l cmd (__fish_jail_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c jail -n "__fish_jail_needs_command" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_needs_command" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_needs_command" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_needs_command" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_needs_command" -l net -d 'Network: loopback only, the domain allowlist, or the host\'s network' -r -f -a "none\t''
allowlist\t''
host\t''"
complete -c jail -n "__fish_jail_needs_command" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains); repeatable' -r
complete -c jail -n "__fish_jail_needs_command" -l allow-port -d 'Allow a TCP port for allowed domains; repeatable' -r
complete -c jail -n "__fish_jail_needs_command" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_needs_command" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_needs_command" -l review -d 'Review mode: the project is an overlay while the program runs; at exit, see its changes and apply all, some or none (`=apply|discard|keep`: without asking)' -r -f -a "ask\t'Ask at exit (on a terminal; without one, keep the changes)'
apply\t'Apply every change that can be applied safely'
discard\t'Throw the changes away'
keep\t'Keep the changes for `jail review PATH`'"
complete -c jail -n "__fish_jail_needs_command" -l timeout -d 'Stop the jail after DURATION (`90s`, `15m`, `2h`): SIGTERM, a grace period, then SIGKILL; exit status 124' -r
complete -c jail -n "__fish_jail_needs_command" -l memory -d 'Limit memory (`512M`, `8G`): the whole jail with cgroup v2, each process otherwise' -r
complete -c jail -n "__fish_jail_needs_command" -l pids -d 'Limit the program\'s processes and threads (a fork bomb stops there)' -r
complete -c jail -n "__fish_jail_needs_command" -l cpus -d 'Limit CPU use (`2`, `0.5`): a cgroup v2 quota, else CPU affinity to that many CPUs' -r
complete -c jail -n "__fish_jail_needs_command" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_needs_command" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_needs_command" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_needs_command" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jail -n "__fish_jail_needs_command" -s V -l version -d 'Print version'
complete -c jail -n "__fish_jail_needs_command" -a "explain" -d 'Print the resolved policy, each value with its source'
complete -c jail -n "__fish_jail_needs_command" -a "doctor" -d 'Probe the kernel\'s features and say what will degrade'
complete -c jail -n "__fish_jail_needs_command" -a "profiles" -d 'List the profiles and where each comes from'
complete -c jail -n "__fish_jail_needs_command" -a "init" -d 'Write a starter .jail.toml for this project'
complete -c jail -n "__fish_jail_needs_command" -a "trust" -d 'Consent to this project\'s .jail.toml as it is now'
complete -c jail -n "__fish_jail_needs_command" -a "review" -d 'Review the changes of a kept or interrupted review session (list them without PATH)'
complete -c jail -n "__fish_jail_needs_command" -a "run" -d 'Run a program whose name is also a jail subcommand'
complete -c jail -n "__fish_jail_using_subcommand explain" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l net -d 'Network: loopback only, the domain allowlist, or the host\'s network' -r -f -a "none\t''
allowlist\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand explain" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l allow-port -d 'Allow a TCP port for allowed domains; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l review -d 'Review mode: the project is an overlay while the program runs; at exit, see its changes and apply all, some or none (`=apply|discard|keep`: without asking)' -r -f -a "ask\t'Ask at exit (on a terminal; without one, keep the changes)'
apply\t'Apply every change that can be applied safely'
discard\t'Throw the changes away'
keep\t'Keep the changes for `jail review PATH`'"
complete -c jail -n "__fish_jail_using_subcommand explain" -l timeout -d 'Stop the jail after DURATION (`90s`, `15m`, `2h`): SIGTERM, a grace period, then SIGKILL; exit status 124' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l memory -d 'Limit memory (`512M`, `8G`): the whole jail with cgroup v2, each process otherwise' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l pids -d 'Limit the program\'s processes and threads (a fork bomb stops there)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l cpus -d 'Limit CPU use (`2`, `0.5`): a cgroup v2 quota, else CPU affinity to that many CPUs' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand explain" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand explain" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand explain" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand explain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jail -n "__fish_jail_using_subcommand doctor" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l net -d 'Network: loopback only, the domain allowlist, or the host\'s network' -r -f -a "none\t''
allowlist\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand doctor" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l allow-port -d 'Allow a TCP port for allowed domains; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l review -d 'Review mode: the project is an overlay while the program runs; at exit, see its changes and apply all, some or none (`=apply|discard|keep`: without asking)' -r -f -a "ask\t'Ask at exit (on a terminal; without one, keep the changes)'
apply\t'Apply every change that can be applied safely'
discard\t'Throw the changes away'
keep\t'Keep the changes for `jail review PATH`'"
complete -c jail -n "__fish_jail_using_subcommand doctor" -l timeout -d 'Stop the jail after DURATION (`90s`, `15m`, `2h`): SIGTERM, a grace period, then SIGKILL; exit status 124' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l memory -d 'Limit memory (`512M`, `8G`): the whole jail with cgroup v2, each process otherwise' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l pids -d 'Limit the program\'s processes and threads (a fork bomb stops there)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l cpus -d 'Limit CPU use (`2`, `0.5`): a cgroup v2 quota, else CPU affinity to that many CPUs' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand doctor" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand doctor" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand doctor" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jail -n "__fish_jail_using_subcommand profiles" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l net -d 'Network: loopback only, the domain allowlist, or the host\'s network' -r -f -a "none\t''
allowlist\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand profiles" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l allow-port -d 'Allow a TCP port for allowed domains; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l review -d 'Review mode: the project is an overlay while the program runs; at exit, see its changes and apply all, some or none (`=apply|discard|keep`: without asking)' -r -f -a "ask\t'Ask at exit (on a terminal; without one, keep the changes)'
apply\t'Apply every change that can be applied safely'
discard\t'Throw the changes away'
keep\t'Keep the changes for `jail review PATH`'"
complete -c jail -n "__fish_jail_using_subcommand profiles" -l timeout -d 'Stop the jail after DURATION (`90s`, `15m`, `2h`): SIGTERM, a grace period, then SIGKILL; exit status 124' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l memory -d 'Limit memory (`512M`, `8G`): the whole jail with cgroup v2, each process otherwise' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l pids -d 'Limit the program\'s processes and threads (a fork bomb stops there)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l cpus -d 'Limit CPU use (`2`, `0.5`): a cgroup v2 quota, else CPU affinity to that many CPUs' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand profiles" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand profiles" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand profiles" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand profiles" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jail -n "__fish_jail_using_subcommand init" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l net -d 'Network: loopback only, the domain allowlist, or the host\'s network' -r -f -a "none\t''
allowlist\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand init" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l allow-port -d 'Allow a TCP port for allowed domains; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l review -d 'Review mode: the project is an overlay while the program runs; at exit, see its changes and apply all, some or none (`=apply|discard|keep`: without asking)' -r -f -a "ask\t'Ask at exit (on a terminal; without one, keep the changes)'
apply\t'Apply every change that can be applied safely'
discard\t'Throw the changes away'
keep\t'Keep the changes for `jail review PATH`'"
complete -c jail -n "__fish_jail_using_subcommand init" -l timeout -d 'Stop the jail after DURATION (`90s`, `15m`, `2h`): SIGTERM, a grace period, then SIGKILL; exit status 124' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l memory -d 'Limit memory (`512M`, `8G`): the whole jail with cgroup v2, each process otherwise' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l pids -d 'Limit the program\'s processes and threads (a fork bomb stops there)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l cpus -d 'Limit CPU use (`2`, `0.5`): a cgroup v2 quota, else CPU affinity to that many CPUs' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l force -d 'Overwrite an existing .jail.toml'
complete -c jail -n "__fish_jail_using_subcommand init" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand init" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand init" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand init" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jail -n "__fish_jail_using_subcommand trust" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l net -d 'Network: loopback only, the domain allowlist, or the host\'s network' -r -f -a "none\t''
allowlist\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand trust" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l allow-port -d 'Allow a TCP port for allowed domains; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l review -d 'Review mode: the project is an overlay while the program runs; at exit, see its changes and apply all, some or none (`=apply|discard|keep`: without asking)' -r -f -a "ask\t'Ask at exit (on a terminal; without one, keep the changes)'
apply\t'Apply every change that can be applied safely'
discard\t'Throw the changes away'
keep\t'Keep the changes for `jail review PATH`'"
complete -c jail -n "__fish_jail_using_subcommand trust" -l timeout -d 'Stop the jail after DURATION (`90s`, `15m`, `2h`): SIGTERM, a grace period, then SIGKILL; exit status 124' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l memory -d 'Limit memory (`512M`, `8G`): the whole jail with cgroup v2, each process otherwise' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l pids -d 'Limit the program\'s processes and threads (a fork bomb stops there)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l cpus -d 'Limit CPU use (`2`, `0.5`): a cgroup v2 quota, else CPU affinity to that many CPUs' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand trust" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand trust" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand trust" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand trust" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jail -n "__fish_jail_using_subcommand review" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l net -d 'Network: loopback only, the domain allowlist, or the host\'s network' -r -f -a "none\t''
allowlist\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand review" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l allow-port -d 'Allow a TCP port for allowed domains; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l review -d 'Review mode: the project is an overlay while the program runs; at exit, see its changes and apply all, some or none (`=apply|discard|keep`: without asking)' -r -f -a "ask\t'Ask at exit (on a terminal; without one, keep the changes)'
apply\t'Apply every change that can be applied safely'
discard\t'Throw the changes away'
keep\t'Keep the changes for `jail review PATH`'"
complete -c jail -n "__fish_jail_using_subcommand review" -l timeout -d 'Stop the jail after DURATION (`90s`, `15m`, `2h`): SIGTERM, a grace period, then SIGKILL; exit status 124' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l memory -d 'Limit memory (`512M`, `8G`): the whole jail with cgroup v2, each process otherwise' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l pids -d 'Limit the program\'s processes and threads (a fork bomb stops there)' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l cpus -d 'Limit CPU use (`2`, `0.5`): a cgroup v2 quota, else CPU affinity to that many CPUs' -r
complete -c jail -n "__fish_jail_using_subcommand review" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand review" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand review" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand review" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand review" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jail -n "__fish_jail_using_subcommand run" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l net -d 'Network: loopback only, the domain allowlist, or the host\'s network' -r -f -a "none\t''
allowlist\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand run" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l allow-port -d 'Allow a TCP port for allowed domains; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l review -d 'Review mode: the project is an overlay while the program runs; at exit, see its changes and apply all, some or none (`=apply|discard|keep`: without asking)' -r -f -a "ask\t'Ask at exit (on a terminal; without one, keep the changes)'
apply\t'Apply every change that can be applied safely'
discard\t'Throw the changes away'
keep\t'Keep the changes for `jail review PATH`'"
complete -c jail -n "__fish_jail_using_subcommand run" -l timeout -d 'Stop the jail after DURATION (`90s`, `15m`, `2h`): SIGTERM, a grace period, then SIGKILL; exit status 124' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l memory -d 'Limit memory (`512M`, `8G`): the whole jail with cgroup v2, each process otherwise' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l pids -d 'Limit the program\'s processes and threads (a fork bomb stops there)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l cpus -d 'Limit CPU use (`2`, `0.5`): a cgroup v2 quota, else CPU affinity to that many CPUs' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand run" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand run" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand run" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
