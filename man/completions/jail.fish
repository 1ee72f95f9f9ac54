# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_jail_global_optspecs
    string join \n p/profile= ro= rw= hide= net= allow-domain= allow-port= expose-host-port= dns-upstream= env= gpu dry-run v/verbose q/quiet h/help V/version
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
complete -c jail -n "__fish_jail_needs_command" -l net -d 'Network: loopback only, the domain allowlist, learn (allow and record every name, print the allowlist at exit), or the host\'s network' -r -f -a "none\t''
allowlist\t''
learn\t''
host\t''"
complete -c jail -n "__fish_jail_needs_command" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains, `NAME:PORT` for one port, `@crates` and other presets); repeatable. Turns `--net none` from a profile into `allowlist`' -r
complete -c jail -n "__fish_jail_needs_command" -l allow-port -d 'Allow a TCP port for allowed domains (default 443); repeatable' -r
complete -c jail -n "__fish_jail_needs_command" -l expose-host-port -d 'Let the jail reach this port of the host\'s loopback at its own 127.0.0.1 or ::1 (e.g. a local model server); repeatable' -r
complete -c jail -n "__fish_jail_needs_command" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_needs_command" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
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
complete -c jail -n "__fish_jail_needs_command" -a "run" -d 'Run a program whose name is also a jail subcommand'
complete -c jail -n "__fish_jail_using_subcommand explain" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l net -d 'Network: loopback only, the domain allowlist, learn (allow and record every name, print the allowlist at exit), or the host\'s network' -r -f -a "none\t''
allowlist\t''
learn\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand explain" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains, `NAME:PORT` for one port, `@crates` and other presets); repeatable. Turns `--net none` from a profile into `allowlist`' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l allow-port -d 'Allow a TCP port for allowed domains (default 443); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l expose-host-port -d 'Let the jail reach this port of the host\'s loopback at its own 127.0.0.1 or ::1 (e.g. a local model server); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand explain" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand explain" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand explain" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand explain" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand explain" -s h -l help -d 'Print help'
complete -c jail -n "__fish_jail_using_subcommand doctor" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l net -d 'Network: loopback only, the domain allowlist, learn (allow and record every name, print the allowlist at exit), or the host\'s network' -r -f -a "none\t''
allowlist\t''
learn\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand doctor" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains, `NAME:PORT` for one port, `@crates` and other presets); repeatable. Turns `--net none` from a profile into `allowlist`' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l allow-port -d 'Allow a TCP port for allowed domains (default 443); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l expose-host-port -d 'Let the jail reach this port of the host\'s loopback at its own 127.0.0.1 or ::1 (e.g. a local model server); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand doctor" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand doctor" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand doctor" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand doctor" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c jail -n "__fish_jail_using_subcommand profiles" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l net -d 'Network: loopback only, the domain allowlist, learn (allow and record every name, print the allowlist at exit), or the host\'s network' -r -f -a "none\t''
allowlist\t''
learn\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand profiles" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains, `NAME:PORT` for one port, `@crates` and other presets); repeatable. Turns `--net none` from a profile into `allowlist`' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l allow-port -d 'Allow a TCP port for allowed domains (default 443); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l expose-host-port -d 'Let the jail reach this port of the host\'s loopback at its own 127.0.0.1 or ::1 (e.g. a local model server); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand profiles" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand profiles" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand profiles" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand profiles" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand profiles" -s h -l help -d 'Print help'
complete -c jail -n "__fish_jail_using_subcommand init" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l net -d 'Network: loopback only, the domain allowlist, learn (allow and record every name, print the allowlist at exit), or the host\'s network' -r -f -a "none\t''
allowlist\t''
learn\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand init" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains, `NAME:PORT` for one port, `@crates` and other presets); repeatable. Turns `--net none` from a profile into `allowlist`' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l allow-port -d 'Allow a TCP port for allowed domains (default 443); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l expose-host-port -d 'Let the jail reach this port of the host\'s loopback at its own 127.0.0.1 or ::1 (e.g. a local model server); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand init" -l force -d 'Overwrite an existing .jail.toml'
complete -c jail -n "__fish_jail_using_subcommand init" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand init" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand init" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand init" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand init" -s h -l help -d 'Print help'
complete -c jail -n "__fish_jail_using_subcommand trust" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l net -d 'Network: loopback only, the domain allowlist, learn (allow and record every name, print the allowlist at exit), or the host\'s network' -r -f -a "none\t''
allowlist\t''
learn\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand trust" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains, `NAME:PORT` for one port, `@crates` and other presets); repeatable. Turns `--net none` from a profile into `allowlist`' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l allow-port -d 'Allow a TCP port for allowed domains (default 443); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l expose-host-port -d 'Let the jail reach this port of the host\'s loopback at its own 127.0.0.1 or ::1 (e.g. a local model server); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand trust" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand trust" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand trust" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand trust" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand trust" -s h -l help -d 'Print help'
complete -c jail -n "__fish_jail_using_subcommand run" -s p -l profile -d 'Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l ro -d 'Make PATH visible read-only (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l rw -d 'Make PATH visible read-write (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l hide -d 'Hide PATH: absent (ENOENT) inside the jail (repeatable)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l net -d 'Network: loopback only, the domain allowlist, learn (allow and record every name, print the allowlist at exit), or the host\'s network' -r -f -a "none\t''
allowlist\t''
learn\t''
host\t''"
complete -c jail -n "__fish_jail_using_subcommand run" -l allow-domain -d 'Allow a domain (`*.example.com` for subdomains, `NAME:PORT` for one port, `@crates` and other presets); repeatable. Turns `--net none` from a profile into `allowlist`' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l allow-port -d 'Allow a TCP port for allowed domains (default 443); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l expose-host-port -d 'Let the jail reach this port of the host\'s loopback at its own 127.0.0.1 or ::1 (e.g. a local model server); repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l dns-upstream -d 'DNS server the network helper asks (default: from /etc/resolv.conf)' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l env -d 'Pass NAME from the host, or set NAME=VALUE; repeatable' -r
complete -c jail -n "__fish_jail_using_subcommand run" -l gpu -d 'Make GPU devices (NVIDIA, AMD, DRI) visible'
complete -c jail -n "__fish_jail_using_subcommand run" -l dry-run -d 'Print the resolved policy instead of running (same as `explain`)'
complete -c jail -n "__fish_jail_using_subcommand run" -s v -l verbose -d 'More detail on stderr (repeat for more)'
complete -c jail -n "__fish_jail_using_subcommand run" -s q -l quiet -d 'Only errors on stderr'
complete -c jail -n "__fish_jail_using_subcommand run" -s h -l help -d 'Print help'
