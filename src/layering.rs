//! The import rule of the source tree, kept by a test: no circle of
//! imports between top-level modules (docs/design.md, "Layers"). Shared,
//! low-level pieces sit below the processes that use them, so each
//! process's code can be read without the others.
//!
//! Read from the source text rather than from the compiler: every
//! `crate::NAME` path (in `use` lines, `use crate::{a::.., b}` groups and
//! inline paths) of a file under `src/NAME…` is an edge to `NAME`.
//! `testutil` (test-only helpers) is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that may be used from anywhere and use nothing of note.
const IGNORED: &[&str] = &["testutil"];

/// Each top-level module and the top-level modules it names.
pub fn edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let Some(from) = top_module(src, &file) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let deps = out.entry(from.clone()).or_default();
        for to in named_modules(&text) {
            if to != from && !IGNORED.contains(&to.as_str()) {
                deps.insert(to);
            }
        }
    }
    out.retain(|k, _| !IGNORED.contains(&k.as_str()));
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `src/launcher/mod.rs` → `launcher`, `src/exit.rs` → `exit`; the crate
/// roots (lib.rs, main.rs) are no module.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The top-level modules a source text names through `crate::`, comments
/// left out.
pub fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::x, b, c::{d, e}}`, on one line or many: the
            // first word of each top-level item of the group.
            let mut depth = 0;
            let mut start = true;
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_alphabetic() || c == '_') => {
                        out.insert(ident_at(&group[k..]));
                        start = false;
                    }
                    c if !c.is_whitespace() => start = false,
                    _ => {}
                }
            }
        } else {
            let id = ident_at(rest);
            if !id.is_empty() {
                out.insert(id);
            }
        }
    }
    out.remove("self");
    out
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A circle of imports, if there is one: the modules along it, the first
/// repeated at the end.
pub fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        mark: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        mark.insert(n.to_string(), Mark::Open);
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match mark.get(m.as_str()).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let i = path.iter().position(|p| p == m).unwrap_or(0);
                    let mut c = path[i..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                Mark::New => {
                    if let Some(c) = visit(m, edges, mark, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        mark.insert(n.to_string(), Mark::Done);
        None
    }
    let mut mark = BTreeMap::new();
    for n in edges.keys() {
        if mark.get(n.as_str()).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(c) = visit(n, edges, &mut mark, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(pairs: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    }

    #[test]
    fn paths_groups_and_inline_uses_are_read_and_comments_are_not() {
        let text = "use crate::sys;\n\
                    use crate::{config::spec::NetMode, plan, outside::{net, guard}};\n\
                    use crate::{\n    host::canonical,\n    display,\n};\n\
                    let x = crate::reap::wait_for(1, false); // crate::review\n\
                    //! crate::doctor\n";
        let got: Vec<String> = named_modules(text).into_iter().collect();
        assert_eq!(
            got,
            ["config", "display", "host", "outside", "plan", "reap", "sys"]
        );
    }

    #[test]
    fn a_cycle_is_found_and_named_and_a_layered_graph_has_none() {
        let g = graph(&[("app", "launcher"), ("launcher", "plan"), ("plan", "sys")]);
        assert_eq!(find_cycle(&g), None);
        let g = graph(&[
            ("app", "launcher"),
            ("launcher", "plan"),
            ("plan", "harden"),
            ("harden", "plan"),
        ]);
        assert_eq!(
            find_cycle(&g),
            Some(vec!["plan".into(), "harden".into(), "plan".into()])
        );
    }

    #[test]
    fn no_circle_of_imports_between_top_level_modules() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let g = edges(&src);
        // The reader works on this tree: the launcher names the plan.
        assert!(g.get("launcher").is_some_and(|d| d.contains("plan")));
        if let Some(c) = find_cycle(&g) {
            panic!(
                "a circle of imports between top-level modules: {} \
                 (shared pieces go below the processes that use them; see \
                 docs/design.md, \"Layers\")",
                c.join(" -> ")
            );
        }
    }
}
