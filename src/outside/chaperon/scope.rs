//! Which jobs a jail may see: those a chaperon of the same user submitted
//! for the same project, recorded in ~/.local/state/jail/slurm/ (never
//! visible inside a jail, so the program cannot add a job of its own
//! choosing). Any other job is answered exactly as Slurm answers for a
//! job that does not exist: the chaperon puts an id that can never exist
//! in its place, runs the real command, and writes the id the program
//! asked for back into the answer.
//!
//! The ids that can never exist: a job id is at most 26 bits
//! (MaxJobId <= 0x03FFFFFF); above that, federated clusters put their
//! cluster number (1..63) and the local id (never 0). So `N << 26` with
//! N in 1..=63 is no job anywhere.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// How many distinct out-of-scope ids one command may name.
pub const MAX_FOREIGN: usize = 63;

/// The k-th (0-based) id that never exists.
pub fn sentinel(k: usize) -> u64 {
    ((k as u64) + 1) << 26
}

/// The job a job/step/array-task token belongs to (`12`, `12_3`,
/// `12_[1-4]`, `12.0`, `12.batch`, `12+1`), or None if it is not one.
pub fn base_id(token: &str) -> Option<u64> {
    let digits = token.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let rest = &token[digits..];
    let ok = rest.is_empty()
        || (rest.starts_with(['_', '.', '+'])
            && rest[1..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"[]-,_.%".contains(&b)));
    if !ok {
        return None;
    }
    token[..digits].parse().ok()
}

/// Splits a Slurm id list on commas that are not inside `[...]`.
pub fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut depth) = (String::new(), 0i32);
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// A token that is no job id, or one foreign id too many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadId;

/// Rewrites job id tokens: those in scope stay, others get a sentinel in
/// place of their job number. Remembers each sentinel's original.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rewriter {
    /// (sentinel, the job number the program named)
    pub swapped: Vec<(u64, String)>,
}

impl Rewriter {
    /// One token. Err: not a job id (the caller refuses it).
    pub fn token(&mut self, token: &str, in_scope: &dyn Fn(u64) -> bool) -> Result<String, BadId> {
        let base = base_id(token).ok_or(BadId)?;
        if in_scope(base) {
            return Ok(token.to_string());
        }
        let digits = token.bytes().take_while(u8::is_ascii_digit).count();
        let orig = token[..digits].to_string();
        let s = match self.swapped.iter().find(|(_, o)| *o == orig) {
            Some((s, _)) => *s,
            None => {
                if self.swapped.len() >= MAX_FOREIGN {
                    return Err(BadId);
                }
                let s = sentinel(self.swapped.len());
                self.swapped.push((s, orig));
                s
            }
        };
        Ok(format!("{s}{}", &token[digits..]))
    }

    /// A comma list of tokens.
    pub fn list(&mut self, list: &str, in_scope: &dyn Fn(u64) -> bool) -> Result<String, BadId> {
        let parts: Result<Vec<String>, BadId> = split_list(list)
            .iter()
            .map(|t| self.token(t, in_scope))
            .collect();
        Ok(parts?.join(","))
    }

    /// Puts the program's ids back into the real command's answer
    /// (whole numbers only).
    pub fn restore(&self, text: &[u8]) -> Vec<u8> {
        if self.swapped.is_empty() {
            return text.to_vec();
        }
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            if text[i].is_ascii_digit() && (i == 0 || !text[i - 1].is_ascii_digit()) {
                let n = text[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                let num = &text[i..i + n];
                let hit = self
                    .swapped
                    .iter()
                    .find(|(s, _)| s.to_string().as_bytes() == num);
                match hit {
                    Some((_, orig)) => out.extend_from_slice(orig.as_bytes()),
                    None => out.extend_from_slice(num),
                }
                i += n;
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
        out
    }
}

/// The record of one project's jobs.
#[derive(Debug, Clone)]
pub struct Records {
    pub file: PathBuf,
}

impl Records {
    /// `state` is jail's state directory; one file per project (the
    /// project path's hash), so scoping survives renames of nothing else.
    pub fn new(state: &Path, project: &Path) -> Records {
        let hash = Sha256::digest(project.as_os_str().as_encoded_bytes());
        let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        Records {
            file: state.join("slurm").join(format!("{hex}.jobs")),
        }
    }

    /// Every job recorded for the project.
    pub fn load(&self) -> BTreeSet<u64> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// Appends a job (one short O_APPEND write: concurrent chaperons of
    /// the project never interleave within a line).
    pub fn add(&self, id: u64, project: &Path) -> std::io::Result<()> {
        if let Some(dir) = self.file.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.file)?;
        f.write_all(format!("{id} {}\n", project.display()).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_tokens_and_lists() {
        assert_eq!(base_id("12"), Some(12));
        assert_eq!(base_id("12_3"), Some(12));
        assert_eq!(base_id("12_[1-4]"), Some(12));
        assert_eq!(base_id("12.batch"), Some(12));
        assert_eq!(base_id("12+1"), Some(12));
        for bad in ["", "x", "12x", "-1", "12;rm", "12 3"] {
            assert_eq!(base_id(bad), None, "{bad}");
        }
        assert_eq!(split_list("1,2_[1,3],4"), vec!["1", "2_[1,3]", "4"]);
    }

    #[test]
    fn foreign_ids_are_swapped_and_restored() {
        let mine = |id: u64| id == 5;
        let mut r = Rewriter::default();
        assert_eq!(
            r.list("5,7_2,8,7", &mine).unwrap(),
            format!("5,{}_2,{},{}", 1u64 << 26, 2u64 << 26, 1u64 << 26)
        );
        let answer = format!(
            "error on job id {}: Invalid; job {}; 671088640",
            1u64 << 26,
            2u64 << 26
        );
        assert_eq!(
            String::from_utf8(r.restore(answer.as_bytes())).unwrap(),
            "error on job id 7: Invalid; job 8; 671088640"
        );
        assert!(r.token("abc", &mine).is_err());
    }

    #[test]
    fn sentinels_are_never_job_ids() {
        for k in 0..MAX_FOREIGN {
            let s = sentinel(k);
            assert!(s > 0x03FF_FFFF, "above MaxJobId");
            assert_eq!(s & 0x03FF_FFFF, 0, "local id 0 in a federation");
        }
        let mut r = Rewriter::default();
        for i in 0..MAX_FOREIGN {
            r.token(&format!("{}", 1000 + i), &|_| false).unwrap();
        }
        assert!(r.token("99", &|_| false).is_err(), "too many");
    }

    #[test]
    fn records_round_trip_per_project() {
        let dir = std::env::temp_dir().join(format!("jail-scope-{}", std::process::id()));
        let a = Records::new(&dir, Path::new("/p/a"));
        let b = Records::new(&dir, Path::new("/p/b"));
        a.add(10, Path::new("/p/a")).unwrap();
        a.add(11, Path::new("/p/a")).unwrap();
        b.add(20, Path::new("/p/b")).unwrap();
        assert_eq!(a.load(), [10, 11].into_iter().collect());
        assert_eq!(b.load(), [20].into_iter().collect());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
