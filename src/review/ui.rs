//! What the user sees and answers: the list of changes, diffs (through a
//! pager when long), and one-letter questions on the terminal. Everything
//! shown comes from the jailed program (names, contents), so control
//! characters are made visible first: a file cannot drive the terminal.

use std::io::Write;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use super::changes::{Block, Change, Kind, Node, Type};
use crate::config::limits::show_size;

/// Files larger than this get no diff.
const MAX_DIFF: u64 = 4 << 20;

/// Control characters (C0, DEL, C1) shown as `^X` or `\u{..}`; newlines
/// and tabs kept.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            '\u{7f}' => out.push_str("^?"),
            c if ('\u{80}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// A path for one line of output (newlines made visible too).
pub fn name(p: &Path) -> String {
    visible(&p.to_string_lossy())
        .replace('\n', "^J")
        .replace('\t', "^I")
}

/// Whether a symlink target leaves the project from where it sits.
fn leaves(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth = rel.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

fn kind_word(c: &Change) -> &'static str {
    match (&c.kind, &c.block) {
        (_, Some(Block::Protected)) => "host-run",
        (_, Some(Block::Special(_))) => "special",
        (Kind::Added, _) => "added",
        (Kind::Modified, _) => "modified",
        (Kind::Deleted, _) => "deleted",
        (Kind::Renamed { .. }, _) => "renamed",
        (Kind::Mode, _) => "mode",
        (Kind::NewDir, _) => "new dir",
    }
}

/// The one-line detail of a change (counts, types, modes, warnings).
pub fn detail(c: &Change, upper: &Path, host: &Path) -> String {
    let mut d = Vec::new();
    match &c.block {
        Some(Block::Protected) => d.push(format!(
            "RUNS ON THE HOST: {}; applied only if you say yes to it alone, else moved to \
             quarantine",
            super::changes::why_protected(&c.rel)
        )),
        Some(Block::Special(t)) => d.push(format!("{}: not applied", t.name())),
        None => {}
    }
    let new = c.new.as_ref();
    let old = c.old.as_ref();
    match (&c.kind, new, old) {
        (Kind::Deleted, _, Some(o)) if o.ty == Type::Dir => {
            d.push(format!("directory with {} entries", c.entries))
        }
        (Kind::Deleted, _, Some(o)) if o.ty != Type::File => d.push(o.ty.name().to_string()),
        (Kind::Mode, Some(n), Some(o)) => d.push(format!("mode {:o} -> {:o}", o.mode, n.mode)),
        (Kind::NewDir, _, _) => d.push("empty directory".into()),
        (_, Some(n), o) if n.ty == Type::Symlink => {
            let t = n.link.clone().unwrap_or_default();
            let mut s = format!("symlink -> {}", name(&t));
            if leaves(&c.rel, &t) {
                s.push_str(" (points outside the project)");
            }
            if let Some(o) = o.filter(|o| o.ty != Type::Symlink) {
                s = format!("{} -> {s}", o.ty.name());
            }
            d.push(s);
        }
        (_, Some(n), Some(o)) if n.ty != o.ty => {
            d.push(format!("{} -> {}", o.ty.name(), n.ty.name()))
        }
        (_, Some(n), _) if n.ty == Type::File && c.block.is_none() => {
            d.push(counts(c, upper, host));
        }
        _ => {}
    }
    if let (Kind::Modified, Some(n), Some(o)) = (&c.kind, new, old) {
        if n.ty == o.ty && n.mode != o.mode {
            d.push(format!("mode {:o} -> {:o}", o.mode, n.mode));
        }
    }
    if let Kind::Renamed { from } = &c.kind {
        d.insert(0, format!("from {}", name(from)));
    }
    if let Some(n) = new {
        if n.ty == Type::File && n.mode & 0o6000 != 0 {
            d.push(format!("mode {:o}: setuid/setgid dropped", n.mode));
        } else if n.ty == Type::File && c.kind == Kind::Added && n.mode & 0o111 != 0 {
            d.push("executable".into());
        }
        if n.sparse() {
            d.push(format!("sparse, {} apparent", show_size(n.size)));
        }
    }
    if let Some(why) = &c.conflict {
        d.push(format!("CONFLICT: {why}"));
    }
    d.retain(|s| !s.is_empty());
    d.join("; ")
}

/// `+A -D`, or what kind of content it is.
fn counts(c: &Change, upper: &Path, host: &Path) -> String {
    match diff(c, upper, host) {
        Diff::Text { plus, .. } if c.old.is_none() => format!("+{plus}"),
        Diff::Text { plus, minus, .. } => format!("+{plus} -{minus}"),
        Diff::Binary => format!(
            "binary, {}",
            match c.old.as_ref().filter(|o| o.ty == Type::File) {
                Some(o) => format!("{} -> {}", show_size(o.size), size_of(c.new.as_ref())),
                None => size_of(c.new.as_ref()),
            }
        ),
        Diff::Large => format!("large, {}", size_of(c.new.as_ref())),
        Diff::Unreadable(e) => format!("cannot read: {e}"),
        Diff::None => String::new(),
    }
}

fn size_of(n: Option<&Node>) -> String {
    n.map_or_else(String::new, |n| show_size(n.size))
}

pub enum Diff {
    Text {
        text: String,
        plus: usize,
        minus: usize,
    },
    Binary,
    Large,
    Unreadable(String),
    None,
}

fn read_capped(p: &Path, n: Option<&Node>) -> Result<Option<Vec<u8>>, String> {
    match n {
        Some(n) if n.ty == Type::File => {
            if n.size > MAX_DIFF {
                return Ok(None);
            }
            std::fs::read(p).map(Some).map_err(|e| e.to_string())
        }
        _ => Ok(Some(Vec::new())),
    }
}

fn is_binary(b: &[u8]) -> bool {
    b[..b.len().min(8000)].contains(&0) || std::str::from_utf8(b).is_err()
}

/// The unified diff of a file change (host's version against upper's).
pub fn diff(c: &Change, upper: &Path, host: &Path) -> Diff {
    let new = c.new.as_ref().filter(|n| n.ty == Type::File);
    let (old_rel, old) = match &c.kind {
        Kind::Renamed { .. } => return Diff::None,
        _ => (&c.rel, c.old.as_ref().filter(|o| o.ty == Type::File)),
    };
    if new.is_none() && old.is_none() {
        return Diff::None;
    }
    // A host path behind a symlinked directory is never read (see scan).
    let old = if c.conflict.as_deref().is_some_and(|w| w.contains("symlink")) {
        None
    } else {
        old
    };
    let (a, b) = match (
        read_capped(&host.join(old_rel), old),
        read_capped(&upper.join(&c.rel), new),
    ) {
        (Ok(Some(a)), Ok(Some(b))) => (a, b),
        (Ok(None), _) | (_, Ok(None)) => return Diff::Large,
        (Err(e), _) | (_, Err(e)) => return Diff::Unreadable(e),
    };
    if is_binary(&a) || is_binary(&b) {
        return Diff::Binary;
    }
    let (a, b) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    let d = similar::TextDiff::from_lines(a.as_ref(), b.as_ref());
    let (mut plus, mut minus) = (0, 0);
    for op in d.iter_all_changes() {
        match op.tag() {
            similar::ChangeTag::Insert => plus += 1,
            similar::ChangeTag::Delete => minus += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let label = name(&c.rel);
    let text = d
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("a/{label} (project)"),
            &format!("b/{label} (jail)"),
        )
        .to_string();
    Diff::Text {
        text: visible(&text),
        plus,
        minus,
    }
}

/// The list of changes, numbered.
pub fn summary(changes: &[Change], upper: &Path, host: &Path) -> String {
    let w = changes
        .iter()
        .map(|c| name(&c.rel).chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    let mut s = String::new();
    for (i, c) in changes.iter().enumerate() {
        let mark = if c.block.is_some() {
            "!".to_string()
        } else if c.conflict.is_some() {
            "C".to_string()
        } else {
            (i + 1).to_string()
        };
        s.push_str(&format!(
            "  {mark:>3}  {:<9}  {:<w$}  {}\n",
            kind_word(c),
            name(&c.rel),
            detail(c, upper, host)
        ));
    }
    s
}

/// Everything about one change: its line and its diff.
pub fn full(c: &Change, upper: &Path, host: &Path) -> String {
    let mut s = format!(
        "{} {}  {}\n",
        kind_word(c),
        name(&c.rel),
        detail(c, upper, host)
    );
    if let Diff::Text { text, .. } = diff(c, upper, host) {
        s.push_str(&text);
    }
    s
}

/// Writes `text` to the terminal (stderr), through a pager when it is
/// longer than the screen: $PAGER, else `less` (LESS=FRX unless set).
pub fn show(text: &str) {
    let rows = crate::sys::term_rows(2).unwrap_or(24) as usize;
    if text.lines().count() + 2 > rows {
        if let Some(()) = page(text) {
            return;
        }
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn page(text: &str) -> Option<()> {
    let pager = std::env::var("PAGER").ok().filter(|p| !p.trim().is_empty());
    let mut cmd = match &pager {
        Some(p) => {
            let mut c = std::process::Command::new("/bin/sh");
            c.arg("-c").arg(p);
            c
        }
        None => {
            let less = crate::host::on_path("less")?;
            let mut c = std::process::Command::new(less);
            if std::env::var_os("LESS").is_none() {
                c.env("LESS", "FRX");
            }
            c
        }
    };
    let stderr = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::from(stderr))
        .spawn()
        .ok()?;
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(text.as_bytes());
    }
    let _ = child.wait();
    Some(())
}

use std::os::fd::AsFd;

/// Set by SIGINT while a question waits.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C during the review ends it, keeping what is undecided (a
/// handler without SA_RESTART, so a waiting read returns).
pub fn catch_interrupt() {
    // SAFETY: a zeroed sigaction with a valid handler and empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_interrupt as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
}

/// Asks `question`; returns the first letter of the answer (lowercase),
/// re-asking until it is one of `letters`. None: end of input or Ctrl-C.
pub fn ask(question: &str, letters: &str) -> Option<char> {
    loop {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let line = read_line()?;
        let c = line.trim().chars().next().map(|c| c.to_ascii_lowercase());
        if let Some(c) = c.filter(|c| letters.contains(*c)) {
            return Some(c);
        }
    }
}

fn read_line() -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if INTERRUPTED.load(Ordering::Relaxed) {
            eprintln!();
            return None;
        }
        match crate::sys::read_interruptible(0, &mut b) {
            Ok(0) => return (!line.is_empty()).then(|| String::from_utf8_lossy(&line).into()),
            Ok(_) if b[0] == b'\n' => return Some(String::from_utf8_lossy(&line).into()),
            Ok(_) => line.push(b[0]),
            Err(libc::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(
            visible("a\x1b[31mb\x07\n\tc\u{9b}"),
            "a^[[31mb^G\n\tc\\u{9b}"
        );
        assert_eq!(name(Path::new("x\ny")), "x^Jy");
    }

    #[test]
    fn symlinks_leaving_the_project_are_named() {
        assert!(leaves(Path::new("a/l"), Path::new("/etc/passwd")));
        assert!(leaves(Path::new("a/l"), Path::new("../../x")));
        assert!(!leaves(Path::new("a/l"), Path::new("../b/x")));
        assert!(!leaves(Path::new("l"), Path::new("src/main.rs")));
    }
}
