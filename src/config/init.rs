//! `jail init`: a commented starter .jail.toml for the project's ecosystem.
//! Pure: the caller lists the project's top-level file names.

/// An ecosystem recognized by a marker file at the project root.
pub struct Ecosystem {
    pub name: &'static str,
    markers: &'static [&'static str],
    /// Domain presets its package tool needs.
    pub presets: &'static [&'static str],
    /// Host caches worth sharing read-write (commented out in the starter:
    /// they are outside the project).
    caches: &'static [&'static str],
}

pub const ECOSYSTEMS: &[Ecosystem] = &[
    Ecosystem {
        name: "Rust",
        markers: &["Cargo.toml"],
        presets: &["@crates"],
        caches: &["~/.cargo/registry", "~/.cargo/git"],
    },
    Ecosystem {
        name: "Node.js",
        markers: &["package.json"],
        presets: &["@npm"],
        caches: &["~/.npm"],
    },
    Ecosystem {
        name: "Python",
        markers: &[
            "pyproject.toml",
            "requirements.txt",
            "setup.py",
            "setup.cfg",
            "Pipfile",
            "uv.lock",
        ],
        presets: &["@pypi"],
        caches: &["~/.cache/pip", "~/.cache/uv"],
    },
    Ecosystem {
        name: "conda",
        markers: &["environment.yml", "environment.yaml", "pixi.toml"],
        presets: &["@conda"],
        caches: &["~/.conda/pkgs"],
    },
    Ecosystem {
        name: "Go",
        markers: &["go.mod"],
        presets: &["@go"],
        caches: &["~/go/pkg/mod"],
    },
    Ecosystem {
        name: "JVM",
        markers: &[
            "pom.xml",
            "build.gradle",
            "build.gradle.kts",
            "settings.gradle",
        ],
        presets: &["@jvm"],
        caches: &["~/.m2/repository", "~/.gradle/caches"],
    },
    Ecosystem {
        name: "Ruby",
        markers: &["Gemfile"],
        presets: &["@rubygems"],
        caches: &[],
    },
    Ecosystem {
        name: "Julia",
        markers: &["Project.toml"],
        presets: &["@julia"],
        caches: &[],
    },
    Ecosystem {
        name: "R",
        markers: &["DESCRIPTION", "renv.lock"],
        presets: &["@cran"],
        caches: &[],
    },
];

/// The ecosystems whose marker files are among `files` (top-level names).
pub fn detect(files: &[String]) -> Vec<&'static Ecosystem> {
    ECOSYSTEMS
        .iter()
        .filter(|e| e.markers.iter().any(|m| files.iter().any(|f| f == m)))
        .collect()
}

/// The starter file for these ecosystems.
pub fn render(found: &[&Ecosystem]) -> String {
    let mut o = String::new();
    o.push_str(
        "# .jail.toml: jail's policy for this project (see `jail explain` and\n\
         # docs/configuration.md). It travels with the repository, so jail treats\n\
         # it as untrusted: it may narrow the policy freely, but whatever widens\n\
         # it (network, paths outside the project, passed variables, Slurm)\n\
         # needs `jail trust` after every change. `jail init` trusted this version.\n",
    );
    let names: Vec<&str> = found.iter().map(|e| e.name).collect();
    if names.is_empty() {
        o.push_str("# Detected: no known ecosystem.\n");
    } else {
        o.push_str(&format!("# Detected: {}.\n", names.join(", ")));
    }
    let mut presets: Vec<&str> = found
        .iter()
        .flat_map(|e| e.presets.iter().copied())
        .collect();
    presets.push("@github");
    presets.dedup();
    let quoted: Vec<String> = presets.iter().map(|p| format!("\"{p}\"")).collect();
    o.push_str(
        "\n[network]\n\
         # Domains the build may reach when the network mode is \"allowlist\"\n\
         # (agent profiles use it; the default profile has no network: set\n\
         # `mode = \"allowlist\"` to let `jail make` fetch dependencies too).\n\
         # mode = \"allowlist\"\n",
    );
    o.push_str(&format!("allow = [{}]\n", quoted.join(", ")));
    o.push_str(
        "# ports = [443]\n\
         \n[filesystem]\n\
         # Paths relative to the project root, or absolute, or `~/...`.\n\
         # Read-only inside the project (narrows the policy):\n\
         # ro = [\"vendor\"]\n\
         # Absent inside the jail (narrows the policy):\n\
         # hide = [\".env\", \"secrets\"]\n",
    );
    let caches: Vec<String> = found
        .iter()
        .flat_map(|e| e.caches.iter())
        .map(|c| format!("\"{c}\""))
        .collect();
    if !caches.is_empty() {
        o.push_str(&format!(
            "# Shared package caches (outside the project: widens the policy):\n\
             # rw = [{}]\n",
            caches.join(", ")
        ));
    }
    o.push_str(
        "\n[env]\n\
         # Host variables the build needs that the scrub would remove:\n\
         # pass = [\"MY_TOKEN\"]\n\
         # set = { RUST_BACKTRACE = \"1\" }\n",
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::{parse_kind, FileKind};
    use std::path::Path;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn detects_ecosystems_by_marker() {
        let found = detect(&names(&["Cargo.toml", "README.md", "requirements.txt"]));
        let n: Vec<&str> = found.iter().map(|e| e.name).collect();
        assert_eq!(n, ["Rust", "Python"]);
        assert!(detect(&names(&["README.md"])).is_empty());
        assert_eq!(detect(&names(&["build.gradle.kts"]))[0].name, "JVM");
    }

    #[test]
    fn every_starter_parses_and_uses_presets() {
        for e in ECOSYSTEMS {
            let text = render(&[e]);
            let p = parse_kind(text.as_bytes(), Path::new(".jail.toml"), FileKind::Project)
                .unwrap_or_else(|err| panic!("{}: {err}\n{text}", e.name));
            let allow = p.network.allow.unwrap();
            assert!(allow.contains(&e.presets[0].to_string()), "{}", e.name);
            for a in &allow {
                assert!(
                    crate::config::presets::get(a.trim_start_matches('@')).is_some(),
                    "{a}"
                );
            }
        }
        let none = render(&[]);
        assert!(none.contains("no known ecosystem"));
        parse_kind(none.as_bytes(), Path::new("f"), FileKind::Project).unwrap();
    }
}
