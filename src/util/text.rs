//! Text from untrusted input made safe to print: control characters escaped, long values cut.

/// `s` with control characters escaped (`\n`, `\u{1b}`) and cut after `max` characters, saying
/// how many bytes were left out: a malformed 50 MB field stays one readable line.
pub fn shown(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 32));
    for (n, (at, c)) in s.char_indices().enumerate() {
        if n == max {
            out.push_str(&format!("... ({} more bytes)", s.len() - at));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_text_cut() {
        assert_eq!(shown("a\tb\u{1b}[31mc", 100), "a\\tb\\u{1b}[31mc");
        assert_eq!(shown("Björk", 3), "Bjö... (2 more bytes)");
        let big = "x".repeat(50_000_000);
        assert_eq!(
            shown(&big, 10).len(),
            "xxxxxxxxxx... (49999990 more bytes)".len()
        );
        assert_eq!(shown("", 5), "");
    }
}
