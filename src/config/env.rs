//! The environment scrub: which host variables reach the jailed program.
//! Inherit-then-delete (like most sandboxes), so PATH, TERM, LANG, module
//! systems etc. keep working; credentials go by name and by pattern.

use super::spec::EnvPolicy;
use super::ConfigError;

/// A variable name: letters, digits and `_`, not starting with a digit.
pub(crate) fn check_env_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadEnvName(name.to_string()))
    }
}

/// A variable name, or a pattern with `*` wildcards.
pub(crate) fn check_env_pattern(p: &str) -> Result<(), ConfigError> {
    let ok = !p.is_empty()
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadEnvName(p.to_string()))
    }
}

/// Removed by exact name.
const BLOCKED_NAMES: &[&str] = &[
    "GITHUB_PAT",
    "GH_PAT",
    "ST_AUTH",
    "DATABASE_URL",
    "PGPASSWORD",
    "PGPASSFILE",
    "MYSQL_PWD",
    "MONGO_URI",
    "MONGODB_URI",
    "REDIS_URL",
    "AMQP_URL",
    "CELERY_BROKER_URL",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "KRB5CCNAME",
    "DBUS_SESSION_BUS_ADDRESS",
    "OLDPWD",
    "TMUX",
    "TMUX_PANE",
    "SLURM_CONF",
    "SLURM_CONFIG_DIR",
    "KUBECONFIG",
    "GPG_AGENT_INFO",
    "DISPLAY",
    "XAUTHORITY",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
    "NETRC",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "NPM_CONFIG__AUTH",
    "NPM_CONFIG__AUTHTOKEN",
    "NODE_AUTH_TOKEN",
    "HISTFILE",
    "JAIL_SITE_DIR",
];

/// Removed by pattern: `*` matches any run of characters; case-sensitive,
/// except the `PASSWORD`/`SECRET` families which are checked case-blind.
const BLOCKED_PATTERNS: &[&str] = &[
    "SSH_*",
    "*_TOKEN",
    "*_TOKEN_*",
    "*_SECRET",
    "*_SECRET_*",
    "*_PASSWORD",
    "*_PASSWD",
    "*_PASS",
    "*_CREDENTIAL",
    "*_CREDENTIALS",
    "*_API_KEY",
    "*_APIKEY",
    "*_SECRET_KEY",
    "*_PRIVATE_KEY",
    "*_ACCESS_KEY",
    "*_KEY_ID",
    "*_PAT",
    "*_AUTH",
    "*_DSN",
    "AWS_*",
    "AMAZON_*",
    "EC2_*",
    "AZURE_*",
    "MSAL_*",
    "GCP_*",
    "GCLOUD_*",
    "GOOGLE_CLOUD_*",
    "CLOUDSDK_*",
    "VAULT_*",
    "KUBE_*",
    "SLURM_JWT",
    "DOCKER_*",
    "REGISTRY_*",
    "CI_*",
    "GITLAB_*",
    "JENKINS_*",
    "BUILDKITE_*",
    "CIRCLECI_*",
    "GITHUB_*",
    "ACTIONS_*",
    "TWINE_*",
    "HF_TOKEN*",
    "HUGGING_FACE_HUB_TOKEN",
    "WANDB_API_KEY",
    "npm_config__*",
    "NPM_CONFIG_//*",
];

const BLOCKED_ANYCASE_WORDS: &[&str] = &["PASSWORD", "PASSWD", "SECRET"];

/// Whether the scrub removes a variable (unless a profile passes it).
pub fn blocked(name: &str) -> bool {
    if BLOCKED_NAMES.contains(&name) {
        return true;
    }
    // Split once per process: this runs for every pattern against every
    // host variable on each start.
    static PATTERNS: std::sync::OnceLock<Vec<Glob>> = std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| BLOCKED_PATTERNS.iter().map(|p| Glob::new(p)).collect());
    if patterns.iter().any(|g| g.matches(name)) {
        return true;
    }
    BLOCKED_ANYCASE_WORDS.iter().any(|w| {
        name.as_bytes()
            .windows(w.len())
            .any(|part| part.eq_ignore_ascii_case(w.as_bytes()))
    })
}

/// A `*`-only glob, split at its stars.
struct Glob<'a> {
    /// Without a star: the whole name.
    first: &'a str,
    middle: Vec<&'a str>,
    last: Option<&'a str>,
}

impl<'a> Glob<'a> {
    fn new(pattern: &'a str) -> Glob<'a> {
        match pattern.split_once('*') {
            None => Glob {
                first: pattern,
                middle: Vec::new(),
                last: None,
            },
            Some((first, tail)) => {
                let (middle, last) = tail.rsplit_once('*').unwrap_or(("", tail));
                Glob {
                    first,
                    middle: middle.split('*').filter(|m| !m.is_empty()).collect(),
                    last: Some(last),
                }
            }
        }
    }

    fn matches(&self, name: &str) -> bool {
        let Some(last) = self.last else {
            return self.first == name;
        };
        if name.len() < self.first.len() + last.len()
            || !name.starts_with(self.first)
            || !name.ends_with(last)
        {
            return false;
        }
        let mut rest = &name[self.first.len()..name.len() - last.len()];
        for mid in &self.middle {
            match rest.find(mid) {
                Some(i) => rest = &rest[i + mid.len()..],
                None => return false,
            }
        }
        true
    }
}

/// The environment the jailed program gets, and how many host variables
/// were removed (only the count is reported, never names or values).
pub fn scrub(
    host: &[(String, String)],
    policy: &EnvPolicy,
    extra: &[(String, String)],
) -> (Vec<(String, String)>, usize) {
    let passed = |n: &str| policy.pass.iter().any(|p| p.value == n);
    let extra_block = |n: &str| policy.block.iter().any(|b| glob(&b.value, n));
    let mut out = Vec::new();
    let mut removed = 0;
    for (k, v) in host {
        if (blocked(k) && !passed(k)) || extra_block(k) {
            removed += 1;
        } else {
            out.push((k.clone(), v.clone()));
        }
    }
    let mut set = |k: &str, v: &str| {
        out.retain(|(name, _)| name != k);
        out.push((k.to_string(), v.to_string()));
    };
    for (k, v) in extra {
        set(k, v);
    }
    for (k, v) in &policy.set {
        set(k, &v.value);
    }
    (out, removed)
}

/// A `*`-only glob, enough for variable names.
pub fn glob(pattern: &str, name: &str) -> bool {
    Glob::new(pattern).matches(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::spec::{Source, Sourced};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn glob_matches_prefix_suffix_and_middle() {
        assert!(glob("SSH_*", "SSH_AUTH_SOCK"));
        assert!(glob("*_TOKEN", "GITHUB_TOKEN"));
        assert!(!glob("*_TOKEN", "TOKENIZER"));
        assert!(glob("*_TOKEN_*", "A_TOKEN_B"));
        assert!(glob("KUBECONFIG", "KUBECONFIG"));
        assert!(!glob("AWS_*", "AWS"));
    }

    #[test]
    fn credentials_are_removed_and_ordinary_variables_kept() {
        let host = env(&[
            ("PATH", "/usr/bin"),
            ("TERM", "xterm"),
            ("LANG", "C.UTF-8"),
            ("HOME", "/h"),
            ("USER", "u"),
            ("SSH_AUTH_SOCK", "/run/ssh"),
            ("GITHUB_TOKEN", "t"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("OPENAI_API_KEY", "k"),
            ("db_password", "p"),
            ("KUBECONFIG", "/k"),
            ("CI_JOB_TOKEN", "c"),
            ("DOCKER_HOST", "d"),
            ("LD_LIBRARY_PATH", "/opt/cuda"),
            ("SLURM_JOB_ID", "1"),
        ]);
        let policy = EnvPolicy {
            pass: vec![],
            set: vec![],
            block: vec![],
        };
        let (out, removed) = scrub(&host, &policy, &[]);
        let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "PATH",
                "TERM",
                "LANG",
                "HOME",
                "USER",
                "LD_LIBRARY_PATH",
                "SLURM_JOB_ID"
            ]
        );
        assert_eq!(removed, 8);
    }

    #[test]
    fn passed_names_survive_and_set_overrides() {
        let host = env(&[
            ("ANTHROPIC_API_KEY", "k"),
            ("OPENAI_API_KEY", "o"),
            ("X", "1"),
        ]);
        let src = Source::Builtin("t".into());
        let policy = EnvPolicy {
            pass: vec![Sourced::new("ANTHROPIC_API_KEY".into(), src.clone())],
            set: vec![("X".into(), Sourced::new("2".into(), src.clone()))],
            block: vec![],
        };
        let (out, removed) = scrub(&host, &policy, &[("JAIL".into(), "1".into())]);
        assert_eq!(removed, 1);
        assert!(out.contains(&("ANTHROPIC_API_KEY".into(), "k".into())));
        assert!(out.contains(&("X".into(), "2".into())));
        assert!(out.contains(&("JAIL".into(), "1".into())));
        assert!(!out.iter().any(|(k, _)| k == "OPENAI_API_KEY"));
    }

    #[test]
    fn block_beats_pass_and_catches_unlisted_names() {
        let host = env(&[("LAB_SECRET_ID", "1"), ("PROXY_URL", "p"), ("HOME", "/h")]);
        let src = Source::Builtin("t".into());
        let policy = EnvPolicy {
            pass: vec![Sourced::new("PROXY_URL".into(), src.clone())],
            set: vec![],
            block: vec![
                Sourced::new("PROXY_*".into(), src.clone()),
                Sourced::new("LAB_*".into(), src),
            ],
        };
        let (out, removed) = scrub(&host, &policy, &[]);
        assert_eq!(out, env(&[("HOME", "/h")]));
        assert_eq!(removed, 2);
    }
}
