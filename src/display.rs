//! Text that reaches the terminal from values jail did not write itself
//! (paths, configuration values from an untrusted `.jail.toml`, names a
//! jailed program chose): control characters are shown escaped, so such a
//! value cannot move the cursor, change the title, or fake another line.

use std::borrow::Cow;

/// `s` with every control character (C0, DEL, C1) written as `\xNN`
/// (`\n`, `\t` and `\e` by name) and backslashes doubled only when some
/// escaping happened.
pub fn safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\x1b' => out.push_str("\\e"),
            '\\' => out.push_str("\\\\"),
            c if is_control(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `safe`, keeping line breaks (for multi-line output such as `explain`).
pub fn safe_lines(s: &str) -> String {
    s.split('\n')
        .map(|l| safe(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_control(c: char) -> bool {
    let u = c as u32;
    u < 0x20 || u == 0x7f || (0x80..0xa0).contains(&u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_kept() {
        assert_eq!(safe("/home/u/proj"), "/home/u/proj");
        assert_eq!(safe("a\x1b]0;pwned\x07b"), "a\\e]0;pwned\\x07b");
        assert_eq!(safe("x\ny"), "x\\ny");
        assert_eq!(safe("\u{9b}31m"), "\\x9b31m");
        assert_eq!(safe_lines("a\nb\x1b"), "a\nb\\e");
        assert_eq!(safe("c:\\x\x07"), "c:\\\\x\\x07");
    }
}
