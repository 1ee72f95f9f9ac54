//! The interactive shell shows that it is in a jail: a bare `jail` on a
//! terminal prefixes the prompt of bash, zsh and fish with `$JAIL_PROMPT`
//! (default `(jail) `, or `(jail:PROFILE) ` for another profile than
//! `shell`).
//!
//! Why the prompt and not the hostname: the hostname is shown by most
//! prompts, but programs also resolve it (Java's getLocalHost, MPI,
//! Gradle), and a name the host's /etc/hosts and DNS do not know breaks
//! them. Why not just `PS1` in the environment: the user's ~/.bashrc
//! (visible read-only in the jail) sets PS1 and wins. So the prefix is
//! added AFTER the user's startup files, and again before every prompt
//! (bash PROMPT_COMMAND, appended last; zsh precmd hook; fish's
//! fish_prompt wrapped), so prompt frameworks that rebuild the prompt keep
//! it:
//!
//! - bash: `--rcfile` with a file that sources ~/.bashrc, then adds the
//!   prefix;
//! - zsh: ZDOTDIR pointing at files that source the user's .zshenv and
//!   .zshrc, restore ZDOTDIR, then add the prefix;
//! - fish: `-C`, which runs after fish's own configuration.
//!
//! The files are written by a `/bin/sh` wrapper inside the jail, to its
//! private /tmp, and removed by the shell once read: nothing on the host.
//! Other shells start unchanged.

/// The environment variable holding the prefix; empty: no prefix.
pub const VAR: &str = "JAIL_PROMPT";

/// The default prefix for a profile.
pub fn default_prefix(profile: &str) -> String {
    if profile == "shell" {
        "(jail) ".into()
    } else {
        format!("(jail:{profile}) ")
    }
}

/// The command that starts `shell` interactively with the prefix, or
/// `None` for a shell this does not know (it then starts as it is).
pub fn wrap(shell: &str) -> Option<Vec<String>> {
    let name = shell.rsplit('/').next().unwrap_or(shell);
    match name {
        "bash" | "zsh" => Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            WRAPPER.into(),
            "jail-shell".into(),
            shell.into(),
            name.into(),
        ]),
        "fish" => Some(vec![shell.into(), "-C".into(), FISH_INIT.into()]),
        _ => None,
    }
}

/// `sh -c WRAPPER jail-shell SHELL NAME`: writes the startup file(s) to a
/// private temporary directory inside the jail, then execs the shell.
const WRAPPER: &str = r#"shell=$1
d=$(mktemp -d "${TMPDIR:-/tmp}/jail-shell.XXXXXX") || exec "$shell" -i
export __JAIL_RC="$d"
case $2 in
bash)
  cat > "$d/bashrc" <<'EOF'
if [ -f ~/.bashrc ]; then . ~/.bashrc; fi
__jail_prompt() {
  case $PS1 in "$JAIL_PROMPT"*) ;; *) PS1=$JAIL_PROMPT$PS1 ;; esac
}
__jail_prompt
if [[ $(declare -p PROMPT_COMMAND 2>/dev/null) == "declare -a"* ]]; then
  PROMPT_COMMAND+=(__jail_prompt)
else
  PROMPT_COMMAND="${PROMPT_COMMAND:+$PROMPT_COMMAND
}__jail_prompt"
fi
rm -f -- "$__JAIL_RC/bashrc"; rmdir -- "$__JAIL_RC"; unset __JAIL_RC
EOF
  exec "$shell" --rcfile "$d/bashrc" -i ;;
zsh)
  export __JAIL_ZDOTDIR="${ZDOTDIR:-$HOME}"
  cat > "$d/.zshenv" <<'EOF'
ZDOTDIR=$__JAIL_ZDOTDIR
[[ -f $ZDOTDIR/.zshenv ]] && . $ZDOTDIR/.zshenv
__JAIL_ZDOTDIR=$ZDOTDIR
ZDOTDIR=$__JAIL_RC
EOF
  cat > "$d/.zshrc" <<'EOF'
ZDOTDIR=$__JAIL_ZDOTDIR
unset __JAIL_ZDOTDIR
[[ -f $ZDOTDIR/.zshrc ]] && . $ZDOTDIR/.zshrc
__jail_prompt() { [[ $PROMPT == "$JAIL_PROMPT"* ]] || PROMPT="$JAIL_PROMPT$PROMPT" }
autoload -Uz add-zsh-hook && add-zsh-hook precmd __jail_prompt
__jail_prompt
rm -f -- $__JAIL_RC/.zshenv $__JAIL_RC/.zshrc; rmdir -- $__JAIL_RC; unset __JAIL_RC
EOF
  ZDOTDIR="$d" exec "$shell" -i ;;
esac
exec "$shell" -i"#;

/// Runs after fish's configuration: wrap the user's fish_prompt.
const FISH_INIT: &str = "if functions -q fish_prompt; and not functions -q __jail_user_prompt; \
     functions -c fish_prompt __jail_user_prompt; \
     function fish_prompt; printf '%s' \"$JAIL_PROMPT\"; __jail_user_prompt; end; end";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_shells_are_wrapped_others_not() {
        let b = wrap("/usr/bin/bash").unwrap();
        assert_eq!(b[0], "/bin/sh");
        assert_eq!(&b[4..], ["/usr/bin/bash", "bash"]);
        assert_eq!(wrap("/bin/zsh").unwrap()[5], "zsh");
        assert_eq!(wrap("/usr/bin/fish").unwrap()[..2], ["/usr/bin/fish", "-C"]);
        assert!(wrap("/bin/dash").is_none());
        assert_eq!(default_prefix("shell"), "(jail) ");
        assert_eq!(default_prefix("claude"), "(jail:claude) ");
    }

    #[test]
    fn the_wrapper_is_valid_sh() {
        let o = std::process::Command::new("sh")
            .args(["-n", "-c", WRAPPER])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}
