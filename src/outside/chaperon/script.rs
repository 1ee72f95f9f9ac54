//! Batch scripts as sbatch reads them (Slurm 22.05 src/sbatch/sbatch.c
//! `_get_script_buffer` and opt.c `_opt_batch_script`/`get_argument`),
//! so the chaperon validates exactly the options sbatch would apply:
//!
//! - a line starting with `#SBATCH` or `#SLURM` (column 1, case as
//!   written) holds options; every token of every such line joins ONE
//!   argument vector, parsed like the command line (so `#SBATCH -t 5 -i
//!   FILE` sets both, and a value may even sit on the next line);
//! - tokens split on whitespace; `'…'` and `"…"` group; a backslash
//!   escapes the next character; an unquoted `#` ends the line; an empty
//!   token ends the line's options;
//! - scanning stops at the first line that is neither blank nor a comment;
//! - `#PBS` and `#BSUB` lines anywhere are translated by sbatch (unless
//!   `--ignore-pbs`): the chaperon does not translate them and refuses.
//!
//! Pure; unit-tested against those rules.

use super::opts::{self, Parsed, Table};

/// Why a script cannot be submitted as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptError {
    /// What sbatch itself would say (its error lines, without the prefix).
    Native(Vec<String>),
    /// A directive jail does not accept: (directive as written, reason).
    Refused(String, String),
    /// An option inside the directives that does not parse.
    Option(String, opts::ParseError),
}

/// sbatch's sanity checks on a script body.
pub fn check_body(body: &[u8]) -> Result<(), ScriptError> {
    let native = |lines: &[&str]| {
        Err(ScriptError::Native(
            lines.iter().map(|s| s.to_string()).collect(),
        ))
    };
    if body.is_empty() {
        return native(&["Batch script is empty!"]);
    }
    if body.iter().all(|b| b.is_ascii_whitespace() || *b == 0x0b) {
        return native(&["Batch script contains only whitespace!"]);
    }
    if !body.starts_with(b"#!") {
        return native(&[
            "This does not look like a batch script.  The first",
            "line must start with #! followed by the path to an interpreter.",
            "For instance: #!/bin/sh",
        ]);
    }
    if body.contains(&0) {
        return native(&[
            "The Slurm controller does not allow scripts that",
            "contain a NULL character '\\0'.",
        ]);
    }
    if body.windows(2).any(|w| w == b"\r\n") {
        return native(&[
            "Batch script contains DOS line breaks (\\r\\n)",
            "instead of expected UNIX line breaks (\\n).",
        ]);
    }
    Ok(())
}

/// sbatch's `--wrap` script.
pub fn wrap(command: &str) -> Vec<u8> {
    format!("#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{command}\n").into_bytes()
}

/// C's isspace.
fn space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Lines as sbatch's next_line cuts them (a final newline ends the last).
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(body);
    std::iter::from_fn(move || {
        let r = rest?;
        if r.is_empty() {
            rest = None;
            return None;
        }
        match r.iter().position(|&b| b == b'\n') {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fn starts_word(s: &[u8], word: &str) -> bool {
    s.len() >= word.len()
        && s[..word.len()].eq_ignore_ascii_case(word.as_bytes())
        && s.get(word.len()).is_none_or(|&b| space(b))
}

/// get_argument: the next token of `line` and the bytes consumed, or None.
fn argument(line: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut i = 0;
    while i < line.len() && space(line[i]) {
        i += 1;
    }
    if line.get(i) == Some(&b':') {
        return Err("Unexpected `:`".into());
    }
    let mut arg = Vec::new();
    let (mut quoted, mut q, mut escape) = (false, 0u8, false);
    while i < line.len() && (quoted || !space(line[i])) {
        let c = line[i];
        if escape {
            escape = false;
        } else if c == b'\\' {
            escape = true;
            i += 1;
            continue;
        } else if quoted {
            if c == q {
                quoted = false;
                i += 1;
                continue;
            }
        } else if c == b'"' || c == b'\'' {
            quoted = true;
            q = c;
            i += 1;
            continue;
        } else if c == b'#' {
            break;
        }
        arg.push(c);
        i += 1;
    }
    if quoted {
        return Err(format!("Unmatched `{}`", q as char));
    }
    Ok((!arg.is_empty()).then_some((arg, i)))
}

/// The options a script's directives set, parsed as sbatch parses them.
/// `ignore_pbs`: `--ignore-pbs` was given (PBS/LSF lines then are inert).
pub fn directives(body: &[u8], ignore_pbs: bool) -> Result<Parsed, ScriptError> {
    let mut args: Vec<String> = Vec::new();
    for (n, line) in lines(body).enumerate() {
        let rest = if let Some(r) = line.strip_prefix(b"#SBATCH") {
            r
        } else if let Some(r) = line.strip_prefix(b"#SLURM") {
            r
        } else {
            let first = line.iter().find(|&&b| !space(b));
            if first.is_some_and(|&b| b != b'#') {
                break;
            }
            continue;
        };
        let mut ptr = rest;
        let skip = ptr.iter().take_while(|&&b| space(b)).count();
        if starts_word(&ptr[skip..], "hetjob") || starts_word(&ptr[skip..], "packjob") {
            return Err(ScriptError::Refused(
                format!("{} (line {})", String::from_utf8_lossy(line).trim(), n + 1),
                "heterogeneous jobs are not supported in a jail".into(),
            ));
        }
        loop {
            match argument(ptr) {
                Ok(Some((a, used))) => {
                    args.push(String::from_utf8_lossy(&a).into_owned());
                    ptr = &ptr[used..];
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(ScriptError::Native(vec![format!(
                        "script: line {}: {e} in [{}]",
                        n + 1,
                        String::from_utf8_lossy(line)
                    )]))
                }
            }
        }
    }
    let parsed = opts::parse(&Table::SBATCH, &args).map_err(|e| {
        let what = format!("#SBATCH {}", e.option());
        ScriptError::Option(what, e)
    })?;
    if let Some(first) = parsed.operands.first() {
        return Err(ScriptError::Native(vec![format!(
            "Invalid directive found in batch script: {first}"
        )]));
    }
    // `--ignore-pbs` counts from a directive too (sbatch reads the
    // directives before it translates).
    let ignore_pbs = ignore_pbs || parsed.has("ignore-pbs");
    if !ignore_pbs {
        for (n, line) in lines(body).enumerate() {
            for word in ["#PBS", "#BSUB"] {
                if line.starts_with(word.as_bytes()) {
                    return Err(ScriptError::Refused(
                        format!("{word} (line {})", n + 1),
                        "jail does not translate PBS/LSF directives; write them as #SBATCH, \
                         or give --ignore-pbs"
                            .into(),
                    ));
                }
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(body: &str) -> Vec<(String, Option<String>)> {
        directives(body.as_bytes(), false)
            .unwrap()
            .opts
            .into_iter()
            .map(|o| (o.key.to_string(), o.value))
            .collect()
    }

    fn kv(k: &str, v: Option<&str>) -> (String, Option<String>) {
        (k.to_string(), v.map(str::to_string))
    }

    #[test]
    fn several_options_on_one_line_all_count() {
        // The smuggling AS missed: `-t 5 -i FILE` sets --input too.
        let o = opts("#!/bin/sh\n#SBATCH -t 5 -i /etc/shadow\necho\n");
        assert_eq!(
            o,
            vec![kv("time", Some("5")), kv("input", Some("/etc/shadow"))]
        );
        let o = opts("#!/bin/sh\n#SBATCH -ofile -vJ x\n");
        assert_eq!(
            o,
            vec![
                kv("output", Some("file")),
                kv("verbose", None),
                kv("job-name", Some("x"))
            ]
        );
    }

    #[test]
    fn a_value_may_sit_on_the_next_directive_line() {
        let o = opts("#!/bin/sh\n#SBATCH --output\n#SBATCH /tmp/x\n");
        assert_eq!(o, vec![kv("output", Some("/tmp/x"))]);
    }

    #[test]
    fn slurm_magic_word_quotes_escapes_and_comments() {
        let o = opts("#!/bin/sh\n#SLURM -J 'a b' # comment -o x\n#SBATCH -e \"c\\\"d\"#x\n");
        assert_eq!(
            o,
            vec![kv("job-name", Some("a b")), kv("error", Some("c\"d"))]
        );
        // Directly after the magic word, and a `#` inside quotes is kept.
        let o = opts("#!/bin/sh\n#SBATCH--output='a#b'\n");
        assert_eq!(o, vec![kv("output", Some("a#b"))]);
        // An empty token ends the line.
        let o = opts("#!/bin/sh\n#SBATCH -t 1 \"\" -o x\n");
        assert_eq!(o, vec![kv("time", Some("1"))]);
    }

    #[test]
    fn scanning_stops_at_the_first_command() {
        let o = opts("#!/bin/sh\n\n  # indented comment\n#SBATCH -t 1\necho hi\n#SBATCH -o /x\n");
        assert_eq!(o, vec![kv("time", Some("1"))]);
        // Indented directives are comments.
        assert!(opts("#!/bin/sh\n  #SBATCH -o /x\n").is_empty());
    }

    #[test]
    fn stray_words_hetjobs_and_pbs_are_errors() {
        assert!(matches!(
            directives(b"#!/bin/sh\n#SBATCH -t 1 oops\n", false),
            Err(ScriptError::Native(_))
        ));
        assert!(matches!(
            directives(
                b"#!/bin/sh\n#SBATCH -n1\n#SBATCH hetjob\n#SBATCH -n2\n",
                false
            ),
            Err(ScriptError::Refused(..))
        ));
        let e = directives(b"#!/bin/sh\necho\n#PBS -o /etc/x\n", false).unwrap_err();
        assert!(
            matches!(e, ScriptError::Refused(ref w, _) if w.starts_with("#PBS")),
            "{e:?}"
        );
        assert!(directives(b"#!/bin/sh\necho\n#PBS -o /etc/x\n", true).is_ok());
        assert!(directives(b"#!/bin/sh\n#SBATCH --ignore-pbs\n#PBS -o /etc/x\n", false).is_ok());
        assert!(matches!(
            directives(b"#!/bin/sh\n#SBATCH --pty\n", false),
            Err(ScriptError::Option(..))
        ));
        assert!(matches!(
            directives(b"#!/bin/sh\n#SBATCH -J 'x\n", false),
            Err(ScriptError::Native(_))
        ));
    }

    #[test]
    fn bodies_are_checked_like_sbatch() {
        assert!(check_body(b"#!/bin/sh\necho\n").is_ok());
        for bad in [
            &b""[..],
            b"  \n",
            b"echo\n",
            b"#!/bin/sh\0",
            b"#!/bin/sh\r\necho\r\n",
        ] {
            assert!(
                matches!(check_body(bad), Err(ScriptError::Native(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            wrap("hostname"),
            b"#!/bin/sh\n# This script was created by sbatch --wrap.\n\nhostname\n"
        );
    }
}
