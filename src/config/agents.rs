//! The agents' credential files, in one list: each builtin agent profile
//! hides every other agent's login, so one agent never holds another's
//! credentials. A new agent is one entry here (and its profile).
//! Paths follow REFERENCE.md (credential paths per agent).

use super::spec::Source;

/// (builtin agent profile, the credential files it logs in with).
pub const CREDENTIALS: &[(&str, &[&str])] = &[
    ("claude", &["~/.claude/.credentials.json"]),
    ("codex", &["~/.codex/auth.json"]),
    (
        "gemini",
        &[
            "~/.gemini/oauth_creds.json",
            "~/.gemini/gemini-credentials.json",
        ],
    ),
    ("aider", &["~/.aider/oauth-keys.env"]),
    (
        "opencode",
        &[
            "~/.local/share/opencode/auth.json",
            "~/.config/opencode/auth.json",
        ],
    ),
    ("goose", &["~/.config/goose/secrets.yaml"]),
    ("pi", &["~/.pi/agent/auth.json"]),
    ("cursor-agent", &["~/.config/cursor/auth.json"]),
];

/// Whether `profile` is a builtin agent profile.
pub fn is_agent(profile: &str) -> bool {
    CREDENTIALS.iter().any(|(a, _)| *a == profile)
}

/// The credential files the builtin agent profile `profile` hides: every
/// other agent's. Empty for a profile that is no agent.
pub fn others(profile: &str) -> Vec<&'static str> {
    if !is_agent(profile) {
        return Vec::new();
    }
    CREDENTIALS
        .iter()
        .filter(|(a, _)| *a != profile)
        .flat_map(|(_, files)| files.iter().copied())
        .collect()
}

/// Where such a hidden path comes from, as `explain` shows it (which
/// agent it is hidden from is the profile `explain` names at the top).
pub fn source() -> Source {
    Source::Derived("builtin agent credentials (another agent's login)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::profile::{self, BUILTIN};
    use crate::config::spec::UserInfo;
    use crate::config::{resolve, Catalogue, HostFacts, Request};

    const HOME: &str = "/home/u";

    fn spec(profile: &str) -> crate::config::JailSpec {
        let facts = HostFacts {
            user: UserInfo {
                uid: 1000,
                gid: 1000,
                name: "u".into(),
                home: HOME.into(),
            },
            cwd: "/home/u/proj".into(),
            shell: "/bin/bash".into(),
            git_root: Some("/home/u/proj".into()),
            has_sbatch: false,
            dir_modes: vec![],
        };
        let req = Request {
            profile: Some(profile.into()),
            command: vec!["x".into()],
            ..Request::default()
        };
        resolve(&req, &facts, &Catalogue::builtin().unwrap()).unwrap()
    }

    fn abs(f: &str) -> String {
        f.replacen('~', HOME, 1)
    }

    #[test]
    fn each_agent_hides_every_other_agents_login_and_not_its_own() {
        // The exact set, per builtin agent profile, as the profiles listed
        // it before the list moved here.
        let want: &[(&str, &[&str])] = &[
            (
                "claude",
                &[
                    "~/.codex/auth.json",
                    "~/.gemini/oauth_creds.json",
                    "~/.gemini/gemini-credentials.json",
                    "~/.aider/oauth-keys.env",
                    "~/.local/share/opencode/auth.json",
                    "~/.config/opencode/auth.json",
                    "~/.config/goose/secrets.yaml",
                    "~/.pi/agent/auth.json",
                    "~/.config/cursor/auth.json",
                ],
            ),
            (
                "aider",
                &[
                    "~/.claude/.credentials.json",
                    "~/.codex/auth.json",
                    "~/.gemini/oauth_creds.json",
                    "~/.gemini/gemini-credentials.json",
                    "~/.local/share/opencode/auth.json",
                    "~/.config/opencode/auth.json",
                    "~/.config/goose/secrets.yaml",
                    "~/.pi/agent/auth.json",
                    "~/.config/cursor/auth.json",
                ],
            ),
            (
                "gemini",
                &[
                    "~/.claude/.credentials.json",
                    "~/.codex/auth.json",
                    "~/.aider/oauth-keys.env",
                    "~/.local/share/opencode/auth.json",
                    "~/.config/opencode/auth.json",
                    "~/.config/goose/secrets.yaml",
                    "~/.pi/agent/auth.json",
                    "~/.config/cursor/auth.json",
                ],
            ),
            (
                "opencode",
                &[
                    "~/.claude/.credentials.json",
                    "~/.codex/auth.json",
                    "~/.gemini/oauth_creds.json",
                    "~/.gemini/gemini-credentials.json",
                    "~/.aider/oauth-keys.env",
                    "~/.config/goose/secrets.yaml",
                    "~/.pi/agent/auth.json",
                    "~/.config/cursor/auth.json",
                ],
            ),
        ];
        for (agent, files) in want {
            let mut got = others(agent);
            got.sort();
            let mut files = files.to_vec();
            files.sort();
            assert_eq!(got, files, "{agent}");
        }
        let all: Vec<&str> = CREDENTIALS
            .iter()
            .flat_map(|(_, f)| f.iter().copied())
            .collect();
        for (agent, own) in CREDENTIALS {
            assert!(
                BUILTIN.iter().any(|(n, _)| n == agent),
                "{agent} is no builtin profile"
            );
            let s = spec(agent);
            let hidden = |f: &str| {
                s.filesystem
                    .hide
                    .iter()
                    .find(|h| h.value.to_str() == Some(&abs(f)))
            };
            for f in &all {
                let h = hidden(f);
                if own.contains(f) {
                    assert!(h.is_none(), "{agent} hides its own {f}");
                } else {
                    let h = h.unwrap_or_else(|| panic!("{agent} does not hide {f}"));
                    let why = h.source.to_string();
                    assert!(
                        why.starts_with("builtin agent credentials"),
                        "{agent}: {f}: {why}"
                    );
                }
            }
            // Its own login stays reachable: under what it may write.
            for f in own.iter() {
                let p = abs(f);
                assert!(
                    s.filesystem
                        .rw
                        .iter()
                        .any(|r| std::path::Path::new(&p).starts_with(&r.value)),
                    "{agent}: own {f} is not under its rw dirs"
                );
            }
        }
    }

    #[test]
    fn explain_says_where_a_hidden_login_comes_from() {
        let out = crate::config::explain::render(&spec("claude"), 0);
        let line = out
            .lines()
            .find(|l| l.contains("/home/u/.codex/auth.json"))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(
            line.ends_with("# builtin agent credentials (another agent's login)"),
            "{line}"
        );
        assert!(!out.contains("/home/u/.claude/.credentials.json"), "{out}");
    }

    #[test]
    fn profiles_that_are_no_agent_hide_no_agent_login() {
        for (name, _) in BUILTIN {
            if is_agent(name) {
                continue;
            }
            assert!(others(name).is_empty(), "{name}");
            let s = spec(name);
            for (_, files) in CREDENTIALS {
                for f in *files {
                    assert!(
                        !s.filesystem
                            .hide
                            .iter()
                            .any(|h| h.value.to_str() == Some(&abs(f))),
                        "{name} hides {f}"
                    );
                }
            }
        }
        // The profile files no longer list them: the one list does.
        for (name, text) in BUILTIN {
            let p = profile::parse(text, &profile::builtin_path(name)).unwrap();
            for (_, files) in CREDENTIALS {
                for f in *files {
                    assert!(
                        !p.filesystem.hide.iter().any(|h| h == f),
                        "{name} lists {f}"
                    );
                }
            }
        }
    }
}
