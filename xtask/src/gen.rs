//! Generated files: man pages and shell completions, from `jail::cli::Cli`.
//! Rendered in memory so `ci` can compare them with the committed copies
//! without touching the work tree, and `install` can write them anywhere.
//!
//! Man pages: clap_mangen renders NAME, SYNOPSIS, DESCRIPTION, OPTIONS and
//! SUBCOMMANDS of jail(1) and jail-SUB(1) from the clap definitions; the
//! sections a Unix reader expects beyond `--help` (EXIT STATUS, FILES,
//! ENVIRONMENT, SECURITY, EXAMPLES, SEE ALSO) and the whole of jail.toml(5)
//! are written by hand below, in a small markup (`markup_to_roff`) so the
//! text stays readable here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

/// Where completions go, relative to the workspace root.
pub const COMPLETIONS_DIR: &str = "man/completions";

fn version() -> String {
    jail::cli::Cli::command()
        .get_version()
        .unwrap_or_default()
        .to_string()
}

/// File name → contents for jail.1, one page per visible subcommand
/// (jail-explain.1, ...), and jail.toml.5.
pub fn man_pages() -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut cmd = jail::cli::Cli::command()
        .disable_help_subcommand(true)
        // The examples of `--help` are in EXAMPLES, with more of them.
        .after_help(None::<&str>);
    cmd.build();
    let mut out = BTreeMap::new();
    let source = format!("jail {}", version());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let extra = format!(
            "# SEE ALSO\n`jail`(1), {}\n",
            if sub.get_name() == "explain" || sub.get_name() == "trust" {
                "`jail.toml`(5)"
            } else {
                "`jail-explain`(1)"
            }
        );
        let page = clap_page(sub.clone(), &source, &extra)?;
        out.insert(format!("jail-{}.1", sub.get_name()), page);
    }
    out.insert("jail.1".into(), clap_page(cmd, &source, JAIL_1)?);
    out.insert("jail.toml.5".into(), jail_toml_5(&source).into_bytes());
    Ok(out)
}

/// clap_mangen's page with hand-written sections (markup) before VERSION.
fn clap_page(cmd: clap::Command, source: &str, extra: &str) -> Result<Vec<u8>, String> {
    let man = clap_mangen::Man::new(cmd)
        .source(source)
        .manual("User Commands");
    let mut buf = Vec::new();
    man.render(&mut buf)
        .map_err(|e| format!("rendering man page: {e}"))?;
    let page = String::from_utf8(buf).map_err(|e| format!("man page is not UTF-8: {e}"))?;
    let extra = markup_to_roff(extra);
    let page = match page.find("\n.SH VERSION") {
        Some(at) => format!("{}\n{}{}", &page[..at], extra, &page[at + 1..]),
        None => format!("{page}{extra}"),
    };
    Ok(page.into_bytes())
}

fn jail_toml_5(source: &str) -> String {
    format!(
        ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n\
         .TH jail.toml 5 \"\" \"{source}\" \"File Formats\"\n\
         .SH NAME\n\
         jail.toml \\- configuration of jail: profiles, layers, site policy, project files\n{}",
        markup_to_roff(JAIL_TOML_5)
    )
}

/// File name → contents for the bash, zsh and fish completions.
pub fn completions() -> BTreeMap<String, Vec<u8>> {
    crate::completions::scripts()
}

fn write_all(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, body) in files {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

pub fn write_man(dir: &Path) -> Result<Vec<PathBuf>, String> {
    write_all(dir, &man_pages()?)
}

pub fn write_completions(dir: &Path) -> Result<Vec<PathBuf>, String> {
    write_all(dir, &completions())
}

/// Whether a file name in man/ is a generated page.
fn is_man_page(name: &str) -> bool {
    name.ends_with(".1") || name.ends_with(".5")
}

/// Names of the files in `dir` (not recursive) whose extension marks them as ours.
fn files_in(dir: &Path, is_ours: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| is_ours(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Differences between what is generated now and what is in `dir`:
/// missing, different, or left over (a page for a subcommand that is gone).
pub fn compare(
    dir: &Path,
    want: &BTreeMap<String, Vec<u8>>,
    is_ours: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, body) in want {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(have) if &have == body => {}
            Ok(_) => problems.push(format!("{} is stale", path.display())),
            Err(_) => problems.push(format!("{} is missing", path.display())),
        }
    }
    for name in files_in(dir, is_ours) {
        if !want.contains_key(&name) {
            problems.push(format!(
                "{} is no longer generated",
                dir.join(name).display()
            ));
        }
    }
    problems
}

/// Ok when man/ and the completions match what `cargo xtask man` and
/// `cargo xtask completions` would write now.
pub fn check_current(root: &Path) -> Result<(), String> {
    let mut problems = compare(&root.join("man"), &man_pages()?, is_man_page);
    let want = completions();
    problems.extend(compare(&root.join(COMPLETIONS_DIR), &want, |n| {
        want.contains_key(n)
    }));
    if problems.is_empty() {
        println!("man pages and completions are up to date");
        Ok(())
    } else {
        Err(format!(
            "generated files are out of date:\n  {}\nrun `cargo xtask man && cargo xtask completions` and commit the result",
            problems.join("\n  ")
        ))
    }
}

/// The hand-written sections' markup, turned into man(7) roff:
///
/// - `# TITLE` a section, `## Title` a subsection;
/// - a blank line ends a paragraph;
/// - `- TERM` then lines indented by two spaces: a tagged paragraph (.TP);
/// - lines indented by four spaces or more: a literal example (no filling);
/// - in text, `` `x` `` is bold (commands, options, files: typed as is)
///   and `{x}` italic (a placeholder).
pub fn markup_to_roff(text: &str) -> String {
    let mut out = String::new();
    // A paragraph macro is due before the next text line.
    let mut para = false;
    let mut in_example = false;
    let mut in_item = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent >= 4 && !line.trim().is_empty() {
            if !in_example {
                if in_item {
                    out.push_str(".RS 4\n");
                } else {
                    out.push_str(".PP\n.RS 4\n");
                }
                out.push_str(".nf\n");
                in_example = true;
            }
            out.push_str(&literal(&line[4..]));
            out.push('\n');
            para = true;
            continue;
        }
        if in_example {
            out.push_str(".fi\n.RE\n");
            in_example = false;
        }
        if line.trim().is_empty() {
            para = true;
            in_item = false;
            continue;
        }
        if let Some(title) = line.strip_prefix("## ") {
            out.push_str(&format!(".SS {}\n", title.trim()));
            para = false;
            in_item = false;
        } else if let Some(title) = line.strip_prefix("# ") {
            out.push_str(&format!(".SH {}\n", title.trim().to_uppercase()));
            para = false;
            in_item = false;
        } else if let Some(term) = line.strip_prefix("- ") {
            out.push_str(".TP\n");
            out.push_str(&inline(term));
            out.push('\n');
            para = false;
            in_item = true;
        } else {
            if para && !in_item {
                out.push_str(".PP\n");
            } else if para && in_item {
                // A second paragraph inside a tagged item.
                out.push_str(".IP\n");
            }
            para = false;
            out.push_str(&inline(line.trim_start()));
            out.push('\n');
        }
    }
    if in_example {
        out.push_str(".fi\n.RE\n");
    }
    out
}

/// Escapes text that is typed as is (commands, file names, examples).
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '\'' => out.push_str("\\(aq"),
            '`' => out.push_str("\\(ga"),
            '~' => out.push_str("\\(ti"),
            '^' => out.push_str("\\(ha"),
            c => out.push(c),
        }
    }
    line_start(out)
}

/// Escapes prose and turns `code` into bold and {x} into italic.
fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        match c {
            '`' => match rest[1..].find('`') {
                Some(end) => {
                    out.push_str("\\fB");
                    out.push_str(&literal(&rest[1..1 + end]).replace("\\&", ""));
                    out.push_str("\\fR");
                    rest = &rest[end + 2..];
                    continue;
                }
                None => out.push_str("\\(ga"),
            },
            '{' => match rest[1..].find('}') {
                Some(end) => {
                    out.push_str("\\fI");
                    out.push_str(&literal(&rest[1..1 + end]).replace("\\&", ""));
                    out.push_str("\\fR");
                    rest = &rest[end + 2..];
                    continue;
                }
                None => out.push('{'),
            },
            '\\' => out.push_str("\\e"),
            '\'' => out.push_str("\\(aq"),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    line_start(out)
}

/// A line starting with `.` or `'` would be a request: guard it.
fn line_start(s: String) -> String {
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// jail(1) beyond the options: inserted after SUBCOMMANDS.
const JAIL_1: &str = r#"# PROFILES
The policy comes from a profile, chosen as follows: `--profile` {NAME} if given, else the profile named like the basename of {COMMAND} if there is one (`jail claude` uses `claude`), else `default`; a bare `jail`, which starts your `$SHELL`, uses `shell`. Profiles are layered TOML files: builtin, site (`/etc/jail`, enforced), user (`~/.config/jail`), project (`.jail.toml`, untrusted until `jail trust`), then the command line. `jail profiles` lists them with their origin; `jail explain` prints the resolved policy with the source of every value. The format is described in `jail.toml`(5).

Options such as `--ro` go before {COMMAND} (or before `--`); everything after {COMMAND} is its own. They may also follow `explain` and `run`. A program named like a subcommand runs with `jail run -- `{NAME}.

# THE JAIL
The program runs as you (your uid is mapped to itself; there is no root inside) in new user, mount, pid, ipc, uts, cgroup and network namespaces, with all capabilities dropped, `no_new_privs`, a Landlock ruleset mirroring the mounts and a seccomp filter. It sees:
- the system
  `/usr`, `/etc`, `/opt`, `/bin`, `/lib*`, `/var/lib`, `/var/cache` read-only.
- the project
  read-write at the same path: the git work tree root above the current directory, else the current directory (never `$HOME` or `/`). Paths that could make a program outside the jail run code stay read-only inside it: `.git/hooks`, `.git/config`, `.envrc`, `.vscode/`, `.idea/`, `.claude/settings*.json`, `.mcp.json`, `.jail.toml` and more. One that did not exist and is created inside is moved at exit to jail's quarantine (see FILES), with a one-line notice; nothing is deleted.
- the home
  with the `default` profile jail's own directory for the profile (~/.local/share/jail/profiles/NAME/home), kept between runs, holding the profile's binds (shell dotfiles and toolchains installed in the home, read-only); package caches show yours with the jail's downloads kept apart in jail's storage (see `jail cache`); an agent's profile adds its own state directories read-write, with the files that make the agent run commands read-only.
- no credentials
  `~/.ssh`, `~/.gnupg`, `~/.aws`, `~/.netrc`, cloud and CLI tokens, other agents' logins, the munge key... are absent (ENOENT), even under a visible directory.
- private `/tmp`, `/dev`, `/proc`, `/run`
  a minimal `/dev` (null, zero, full, random, urandom, tty, a private devpts, your terminal as `/dev/console`; GPU devices with `--gpu`), a `/proc` of the jail's own processes, an empty `/run`.
- the network
  `none`: loopback only. `host`: the host's network. `allowlist`: only the allowed domains (until jail's network helper exists it runs as `none`, with a warning: never wider).
- an environment
  without credentials (see ENVIRONMENT).

The jail ends with `jail`: when `jail` dies, even by SIGKILL, every process in the jail dies. Job control, Ctrl-C, Ctrl-Z and window resizes work as for any program.

# EXIT STATUS
- {N}
  The program's own exit status.
- 128+{N}
  The program was killed by signal {N}.
- `125`
  An error of jail itself: a bad configuration file, an override that the site policy refuses, an untrusted project file that would widen the policy, an option that does not apply to the subcommand, a kernel that cannot build the jail. jail prints one line on standard error starting with `jail:`; configuration errors read `jail: `{FILE}`:`{LINE}`:`{COL}`: `{message}.
- `126`
  The command was found but could not be executed: no permission, or it is a script whose `#!` interpreter is not in the jail.
- `127`
  The command was not found in the jail. When it exists on the host, jail says where and which option would show it (for example `--ro ~/venv`).

`jail explain`, `jail profiles`, `jail init` and `jail trust` exit 0 on success and 125 on error; `jail doctor` exits 1 when the jail cannot run safely on this host.

# FILES
- `/etc/jail/jail.toml`
  The site policy, enforced: later layers may only narrow it. Must be owned by root and writable by no one else, as must `/etc/jail` and the directories above it.
- `/etc/jail/profiles/`{NAME}`.toml`
  Profiles of the site.
- `~/.config/jail/config.toml`
  Your settings, applied on top of whichever profile runs.
- `~/.config/jail/profiles/`{NAME}`.toml`
  Your profiles. One named like a builtin profile replaces it; `extends = "claude"` builds on it instead.
- `.jail.toml`
  The project's file, at the project root. It arrives with a cloned repository, so it may narrow the policy at once but widen it only after `jail trust`.
- `~/.local/state/jail/trust/`
  What `jail trust` recorded: project path and the SHA-256 of its `.jail.toml`.
- `~/.local/state/jail/quarantine/`{PROJECT}`/`{TIME}`/`
  Protected project paths that a jailed program created, moved out of the project.
- `~/.local/state/jail/notices.log`
  jail's notices while programs run (denials, a DNS server that cannot be reached), one line each with a UTC time, written whenever stderr is a terminal: `tail -f` it in another terminal. While a full-screen program owns the terminal they are not printed but said after it exits.

`~/.config` is `$XDG_CONFIG_HOME` and `~/.local/state` is `$XDG_STATE_HOME` when those are set. Neither jail directory is visible inside a jail, whatever a profile says, so a jailed program cannot widen the next run.

# ENVIRONMENT
## Read by jail
- `HOME`, `USER`, `SHELL`
  Your home directory (else the password database's), your name, and the shell a bare `jail` starts.
- `PATH`
  Where {COMMAND} is looked up, inside the jail, and on the host for the hint when it is not found inside.
- `XDG_CONFIG_HOME`, `XDG_STATE_HOME`
  Move `~/.config/jail` and `~/.local/state/jail`.
- `JAIL_RESOLV_CONF`
  Another resolv.conf for the network helper to follow instead of `/etc/resolv.conf` (when no DNS server is given); accepted only as a regular file of your own (tests use it).
- `JAIL_SITE_DIR`
  Another site directory; accepted only where no `/etc/jail` is installed, and only a directory owned by root that you cannot write (tests use it).
## Seen by the program
The host's environment without credentials: `SSH_AUTH_SOCK` and `SSH_*`, `*_TOKEN`, `*_SECRET*`, `*PASSWORD*`, `*_API_KEY` (unless the profile passes it), `AWS_*`, `AZURE_*`, `GOOGLE_APPLICATION_CREDENTIALS`, `VAULT_*`, `KUBECONFIG`, `DOCKER_*`, CI secrets, `DISPLAY`, `XAUTHORITY`, `DBUS_SESSION_BUS_ADDRESS` and more are removed; `PATH`, `TERM`, `LANG` and module-system variables stay. `jail explain` prints how many were removed, never their names. `--env` and a profile's `[env]` pass or set variables. jail sets:
- `JAIL=1`
  Inside a jail.
- `JAIL_PROFILE`
  The profile's name.
- `JAIL_PROMPT`
  The prefix a bare `jail` on a terminal adds to the prompt of bash, zsh and fish, after your own startup files and before every prompt: `(jail)`, or `(jail:`{PROFILE}`)` for another profile than `shell`, and a space. Set it in your environment, with `--env`, or in a profile's `[env]` to change it; empty turns it off. The hostname stays the host's, because programs resolve it.
- `HOME`, `PWD`
  Your home and the current directory.

# SECURITY
jail is built against a capable, possibly prompt-injected program running as you. Inside the jail it cannot read your credentials or other projects, write outside the project and its own state, reach hosts the profile does not allow, inject keystrokes into your terminal (TIOCSTI and TIOCLINUX are refused), signal or trace processes outside, reach host daemons over unix sockets (abstract ones included), or plant code that a program outside the jail later runs (git hooks and config, `.envrc`, editor and agent settings in the project are read-only).

Each of these is proven by an escape test that runs the real program as an unprivileged user. `jail doctor` says which kernel features are missing and what degrades without them; jail never silently runs with less protection.

Limits: hard links to secrets that you create inside the project are the same file and stay readable; debuggers (ptrace) do not work inside; jails do not nest. jail needs unprivileged user namespaces: on Ubuntu 23.10 and later, install the AppArmor profile shipped in `contrib/apparmor/jail`.

# EXAMPLES
Run the tests with the `default` profile (project read-write, empty home, no network):

    jail make test

Claude Code with its builtin profile, and an interactive shell in the jail:

    jail claude
    jail

Show a data set read-only and hide a file of the project:

    jail --ro ~/datasets -- python train.py
    jail --rw /scratch/$USER/run42 --hide .env -- ./run.sh

See the policy a command would get, with the source of each value:

    jail explain -- npm test
    jail -p codex --dry-run

A program named like a subcommand, and a starter project file:

    jail run -- explain
    jail init && jail explain

# SEE ALSO
`jail.toml`(5), `jail-explain`(1), `jail-doctor`(1), `jail-profiles`(1), `jail-init`(1), `jail-trust`(1), `jail-run`(1), `bwrap`(1), `unshare`(1), `namespaces`(7), `landlock`(7), `seccomp`(2)
"#;

/// jail.toml(5): the configuration format. Keep in step with
/// docs/configuration.md (the contract: docs/design.md).
const JAIL_TOML_5: &str = r#"# SYNOPSIS
`/etc/jail/jail.toml`, `/etc/jail/profiles/`{NAME}`.toml`

`~/.config/jail/config.toml`, `~/.config/jail/profiles/`{NAME}`.toml`

{PROJECT}`/.jail.toml`

# DESCRIPTION
`jail`(1) takes its policy from TOML files in layers. Later layers override earlier ones, except that nothing may widen what the site enforces:
- 1. builtin
  The profiles compiled into jail (`default`, `shell`, one per agent: `claude`, `codex`, `gemini`, ...).
- 2. site
  `/etc/jail/jail.toml` and `/etc/jail/profiles/*.toml`: trusted and enforced. Later layers may only narrow it.
- 3. user
  `~/.config/jail/config.toml` (applied to every profile) and `~/.config/jail/profiles/*.toml`: trusted.
- 4. project
  `.jail.toml` at the project root: untrusted until `jail trust`.
- 5. command line
  `--ro`, `--rw`, `--hide`, `--net`, `--allow-domain`, `--allow-port`, `--dns-upstream`, `--env`, `--gpu`.

`jail explain` prints the resolved policy with the source of every value. Unknown keys, wrong types and syntax errors stop jail with exit status 125 and one line `jail: `{FILE}`:`{LINE}`:`{COL}`: `{message}.

# PROFILES
A profile is a file {NAME}`.toml` in a `profiles` directory. Which one runs: `--profile` {NAME}, else the profile named like the command (`jail claude` uses `claude`), else `default`; a bare `jail` uses `shell`. A profile in a later layer replaces the one of the same name in an earlier layer; a user profile may not replace a site profile. `jail profiles` lists every profile and where it comes from.

Along `extends`, lists are unioned and single values overridden.

# KEYS
Every key is optional.
- `description =` {string}
  One line for `jail profiles`.
- `extends =` {name}
  Start from that profile (profiles only; a profile may extend the one it replaces: `extends = "claude"` in `~/.config/jail/profiles/claude.toml` builds on the builtin).
## [filesystem]
- `home = "persist"` | `"tmpfs"` | `"ro"` | `"rw"`
  The home directory: jail's own for the profile, kept between runs (persist, the default), an empty tmpfs each run, or your real home read-only or read-write (hidden paths stay hidden: absent where read-only, masked where writable). Each holds the binds below.
- `cache = [`{path}`, ...]`
  Host directories (package caches) shown with the jail's writes kept in jail's own storage for the profile: the program reads yours and keeps what it downloads; yours are never written. `jail cache` shows and clears them.
- `protect = [`{path}`, ...]`
  Files in writable areas that make a program run commands or grant it permissions (an agent's hooks, MCP servers, permission lists): read-only inside; created ones are moved to jail's quarantine at exit. Naming one in `rw` yourself relaxes it.
- `[filesystem.watch]` {file}` = [`{key path}`, ...]`
  JSON files a program rewrites that also hold command-running entries: the entries at these key paths (`*` matches any key) are put back at exit if the program changed them.
- `ro = [`{path}`, ...]`
  Visible read-only.
- `rw = [`{path}`, ...]`
  Visible read-write.
- `create = [`{path}`, ...]`
  Read-write, and created on the host (mode 0700) before the run when missing and the command exists, so that a first login persists (an agent's state directory).
- `hide = [`{path}`, ...]`
  Absent inside the jail (ENOENT), even under a visible parent. Where the parent is writable inside (the project, `rw` paths) the path is masked instead: it exists, empty and unreadable. A hidden path shows only when your own files (user layer) or the command line name that very path in `ro` or `rw`; a visible parent never reveals it, and a site-hidden path never shows.
## [network]
- `mode = "none"` | `"allowlist"` | `"host"`
  Loopback only; the allowed domains only; or the host's network.
- `allow = [`{name}`, ...]`
  Domains for `allowlist`: a name, `*.`{suffix} for its subdomains, or a preset such as `@anthropic`, `@github`, `@pypi`, `@crates`, `@npm` (`jail explain` shows what each expands to).
- `deny = [`{name}`, ...]`
  Domains never allowed.
- `ports = [`{port}`, ...]`
  TCP ports the allowed domains may be reached on (the agent profiles allow 443).
- `dns_upstream = "`{ip}`:`{port}`"`
  The DNS server jail's helper asks (default: the first nameserver of `/etc/resolv.conf`).
## [env]
- `pass = [`{name}`, ...]`
  Variables to keep although the scrub would remove them (an agent's API key).
- `set = { `{NAME}` = "`{value}`", ... }`
  Variables to set; a value starting with `~/` is in your home.
- `block = [`{pattern}`, ...]`
  Names or `*` patterns always removed, even when passed.
## [slurm]
- `enabled = true` | `false` | `"auto"`
  Slurm commands inside the jail, through jail's chaperon; `"auto"`: on when the host has `sbatch`.

# PATHS
Paths are absolute or start with `~/` (your home). In a project's `.jail.toml` they may also be relative to the project root. In the site's `jail.toml`, `~` also means the home in the password database for hidden and read-only paths, so setting `HOME` cannot move them away.

# THE SITE LAYER
`/etc/jail/jail.toml` uses the profile schema (without `extends`) plus a `[site]` table, allowed only there. Its values bind every profile:
- `filesystem.hide`, `network.deny`, `env.block`
  A floor: always applied; naming such a path (or one below it) in `ro`/`rw`, or passing such a variable, is refused.
- `filesystem.ro`
  Added read-only; never becomes read-write.
- `filesystem.rw`, `filesystem.create`
  Added read-write (scratch space), unless a later layer narrows it to `ro`.
- `filesystem.home`
  A maximum: tmpfs < ro < rw.
- `network.mode`
  A maximum: none < allowlist < host.
- `network.allow`, `network.ports`
  A ceiling: every allowed name must be covered by a site entry (`*.x.org` covers `a.x.org`; `allow = []` allows none).
- `network.dns_upstream`, `env.set`
  Fixed.
- `env.pass`
  Added.
- `slurm.enabled = false`
  Slurm may not be enabled.
## [site]
- `profiles = [`{name}`, ...]`
  The only profiles that may be used.
- `rw_outside_project = false`
  Your files, project files and the command line may not make paths outside the project read-write.
- `project_roots = [`{dir}`, ...]`
  Projects must lie below one of these.
- `gpu = false`
  `--gpu` is refused.
- `trust_projects = false`
  Project files may only narrow, even after `jail trust`.
- `slurm_job_network = "node"`
  The tasks of Slurm jobs submitted from a jail use their compute node's network, so the ranks of a multi-node MPI job reach each other; the jail's allowlist then does not hold on the nodes (the site vouches for their network). Default `"policy"`: every task keeps the jail's own network policy.
- `slurm_job_network = "cluster"`
  Each task uses its node's network but reaches only the nodes of its own job's allocation and the networks in `[slurm] cluster_networks`; loopback (but the step's own PMIx server) and every other address are refused (EACCES, one line on the task's stderr), whatever the jail's policy, so the allowlist's names are not reachable from such jobs. A supervisor outside each task's jail decides every connect and send (seccomp user notification; Linux 5.6 or later on the nodes, `jail doctor` says).
- `[slurm] cluster_networks = [`{cidr}`, ...]`
  Networks (`10.1.0.0/16`, `fd00:1::/64`) that tasks reach under `"cluster"` besides the job's nodes. Only the site's jail.toml may set it.

Values of builtin and site profiles that exceed the site policy are narrowed to it (`jail explain` lists each narrowing). Values you ask for (your files, a project file, the command line) are refused with exit status 125 and one line naming the site file and key, never silently ignored.

`/etc/jail`, every directory above it, `jail.toml`, `profiles/` and each profile in it must be owned by root and not writable by group or others; otherwise jail stops with exit status 125.

# THE PROJECT FILE AND TRUST
A project's `.jail.toml` arrives with a cloned repository, so jail does not trust it. It may narrow anything at once: hide paths, make project paths read-only, lower the network mode, deny domains, block or set variables, disable Slurm. Whatever would widen the policy needs your consent: a path outside the project, any `rw` or `create`, a wider `home`, showing a hidden path, a wider network mode, more domains or ports, another DNS server, passed variables, enabling Slurm.

Without consent, running stops with exit status 125 and names the key; `jail explain` shows what the file would do, marked untrusted and not in force, and the `jail trust` command. `jail trust` records the project path and the SHA-256 of the file's bytes under `~/.local/state/jail/trust/`; editing the file, or the same file in another project, needs `jail trust` again. `jail init` writes a starter file for the project's ecosystem and trusts it.

# EXAMPLES
A user profile for a data-science project, built on the builtin `default`:

    # ~/.config/jail/profiles/lab.toml
    description = "Lab notebooks"
    extends = "default"
    [filesystem]
    ro = ["~/datasets"]
    rw = ["/scratch/me"]
    [network]
    mode = "allowlist"
    allow = ["@pypi", "@huggingface"]

A project file that only narrows (no `jail trust` needed):

    # .jail.toml
    [filesystem]
    hide = ["secrets/", ".env"]
    [network]
    mode = "none"

A site policy:

    # /etc/jail/jail.toml
    [filesystem]
    hide = ["/etc/slurm/jwt.key"]
    [network]
    mode = "allowlist"
    [site]
    rw_outside_project = false
    project_roots = ["/home", "/scratch"]

# SEE ALSO
`jail`(1), `jail-explain`(1), `jail-trust`(1), `jail-init`(1), `jail-profiles`(1)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_subcommand_and_one_for_the_format() {
        let pages = man_pages().unwrap();
        for name in [
            "jail.1",
            "jail-explain.1",
            "jail-doctor.1",
            "jail-run.1",
            "jail.toml.5",
        ] {
            assert!(
                pages.contains_key(name),
                "{name} missing: {:?}",
                pages.keys()
            );
        }
        let top = String::from_utf8(pages["jail.1"].clone()).unwrap();
        assert!(
            top.contains("\\-\\-profile"),
            "options section lacks --profile"
        );
        for section in [
            "EXIT STATUS",
            "FILES",
            "ENVIRONMENT",
            "SECURITY",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(top.contains(&format!(".SH {section}\n")), "no {section}");
        }
        // Hand-written sections come before VERSION, after the options.
        let at = |s: &str| top.find(s).unwrap_or_else(|| panic!("{s}"));
        assert!(at(".SH OPTIONS") < at(".SH EXIT STATUS"));
        assert!(at(".SH EXAMPLES") < at(".SH VERSION"));
    }

    #[test]
    fn subcommand_pages_list_only_their_options() {
        let pages = man_pages().unwrap();
        let page = |n: &str| String::from_utf8(pages[n].clone()).unwrap();
        for sub in [
            "jail-doctor.1",
            "jail-profiles.1",
            "jail-trust.1",
            "jail-init.1",
        ] {
            let p = page(sub);
            assert!(!p.contains("\\-\\-profile"), "{sub} lists --profile");
            assert!(!p.contains("\\-\\-ro"), "{sub} lists --ro");
            assert!(p.contains("\\-\\-verbose"), "{sub} lacks -v");
        }
        assert!(page("jail-init.1").contains("\\-\\-force"));
        assert!(page("jail-profiles.1").contains("\\-\\-names"));
        for sub in ["jail-explain.1", "jail-run.1"] {
            let p = page(sub);
            assert!(
                p.contains("\\-\\-profile") && p.contains("\\-\\-gpu"),
                "{sub}"
            );
        }
        assert!(!page("jail-explain.1").contains("\\-\\-force"));
    }

    #[test]
    fn markup_becomes_roff() {
        let r = markup_to_roff(
            "# Exit status\nText `--ro` {PATH} isn't.\n.dot\n\n- `125`\n  jail's own\n\n    jail -p x 'a'\n",
        );
        assert_eq!(
            r,
            ".SH EXIT STATUS\nText \\fB\\-\\-ro\\fR \\fIPATH\\fR isn\\(aqt.\n\\&.dot\n\
             .TP\n\\fB125\\fR\njail\\(aqs own\n.PP\n.RS 4\n.nf\njail \\-p x \\(aqa\\(aq\n.fi\n.RE\n"
        );
    }

    #[test]
    fn compare_reports_stale_missing_and_leftover() {
        let dir = std::env::temp_dir().join(format!("xtask-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.1"), b"old").unwrap();
        std::fs::write(dir.join("gone.1"), b"x").unwrap();
        std::fs::write(dir.join("notes.txt"), b"not ours").unwrap();
        let want: BTreeMap<String, Vec<u8>> = [
            ("a.1".to_string(), b"new".to_vec()),
            ("b.1".to_string(), b"b".to_vec()),
        ]
        .into();
        let problems = compare(&dir, &want, is_man_page);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].ends_with("a.1 is stale"));
        assert!(problems[1].ends_with("b.1 is missing"));
        assert!(problems[2].ends_with("gone.1 is no longer generated"));
    }
}
