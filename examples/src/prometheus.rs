//! The one rule of Prometheus's text format the daemons need beyond `name{labels} value`:
//! how a label value is quoted. Interface, node and source names come from configs and
//! the network, so a quote, a backslash or a newline in one must not end the value (or
//! the line) and let the rest pose as other series.

/// Escapes a label value as the text format says: `\` as `\\`, `"` as `\"`, a newline
/// as `\n`. Everything else is taken as it is (the format is UTF-8).
pub fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quotes_backslashes_and_newlines_are_escaped() {
        assert_eq!(label_value("eth0"), "eth0");
        assert_eq!(label_value("a\"b"), "a\\\"b");
        assert_eq!(label_value("a\\b"), "a\\\\b");
        assert_eq!(
            label_value("a\nb} 1\nevil{x=\"y"),
            "a\\nb} 1\\nevil{x=\\\"y"
        );
    }

    /// Reads an escaped value back as a scraper would: up to the first unescaped quote.
    fn unescape(s: &str) -> (String, &str) {
        let mut out = String::new();
        let mut chars = s.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (out, &s[i..]),
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, c)) => out.push(c),
                    None => break,
                },
                c => out.push(c),
            }
        }
        (out, "")
    }

    proptest! {
        /// Whatever the value, the escaped text is one line, and a scraper reads back
        /// exactly the value and finds the closing quote where we put it.
        #[test]
        fn any_value_reads_back_whole_on_one_line(v in any::<String>()) {
            let escaped = label_value(&v);
            prop_assert!(!escaped.contains('\n'));
            let quoted = format!("{escaped}\"}} 1");
            let (back, rest) = unescape(&quoted);
            prop_assert_eq!(back, v);
            prop_assert_eq!(rest, "\"} 1");
        }
    }
}
