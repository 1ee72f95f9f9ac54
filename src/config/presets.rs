//! Domain presets usable in `allow` lists (`"@github"`), expanded at
//! resolve time so `jail explain` can show the preset each name came from.
//! Lists follow REFERENCE.md §5 (what each ecosystem's tools contact).

pub const PRESETS: &[(&str, &[&str])] = &[
    (
        "anthropic",
        &[
            "api.anthropic.com",
            "console.anthropic.com",
            "platform.claude.com",
            "claude.ai",
        ],
    ),
    (
        "openai",
        &["api.openai.com", "auth.openai.com", "chatgpt.com"],
    ),
    (
        "google-ai",
        &[
            "generativelanguage.googleapis.com",
            "cloudcode-pa.googleapis.com",
            "oauth2.googleapis.com",
            "accounts.google.com",
        ],
    ),
    ("cursor", &["cursor.com", "*.cursor.com", "*.cursor.sh"]),
    (
        "github",
        &[
            "github.com",
            "api.github.com",
            "codeload.github.com",
            "raw.githubusercontent.com",
            "objects.githubusercontent.com",
            "release-assets.githubusercontent.com",
            "ghcr.io",
            "pkg-containers.githubusercontent.com",
        ],
    ),
    ("pypi", &["pypi.org", "files.pythonhosted.org"]),
    (
        "crates",
        &[
            "crates.io",
            "index.crates.io",
            "static.crates.io",
            "static.rust-lang.org",
        ],
    ),
    (
        "npm",
        &[
            "registry.npmjs.org",
            "registry.yarnpkg.com",
            "repo.yarnpkg.com",
            "nodejs.org",
        ],
    ),
    (
        "huggingface",
        &[
            "huggingface.co",
            "hf.co",
            "cdn-lfs.huggingface.co",
            "cdn-lfs-us-1.huggingface.co",
            "*.xethub.hf.co",
        ],
    ),
    (
        "conda",
        &[
            "conda.anaconda.org",
            "repo.anaconda.com",
            "anaconda.org",
            "repo.prefix.dev",
            "prefix.dev",
        ],
    ),
    (
        "go",
        &[
            "proxy.golang.org",
            "sum.golang.org",
            "go.dev",
            "dl.google.com",
        ],
    ),
    (
        "jvm",
        &[
            "repo.maven.apache.org",
            "repo1.maven.org",
            "services.gradle.org",
            "plugins.gradle.org",
            "downloads.gradle.org",
        ],
    ),
    ("rubygems", &["rubygems.org", "index.rubygems.org"]),
    ("julia", &["pkg.julialang.org"]),
    ("cran", &["cloud.r-project.org"]),
];

/// The domains of preset `name` (without the `@`), if it exists.
pub fn get(name: &str) -> Option<&'static [&'static str]> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}

pub fn names() -> String {
    PRESETS
        .iter()
        .map(|(n, _)| format!("@{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_lowercase_names_without_schemes() {
        for (n, ds) in PRESETS {
            assert!(!ds.is_empty(), "{n}");
            for d in *ds {
                assert_eq!(*d, d.to_ascii_lowercase(), "{n}: {d}");
                assert!(!d.contains('/') && !d.contains(':'), "{n}: {d}");
            }
        }
        assert!(get("github").unwrap().contains(&"github.com"));
        assert!(get("nope").is_none());
    }
}
