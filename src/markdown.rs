//! Text from outside (registry messages, annotations, Wasm metadata, certificate identities,
//! tags) as inert text in the step summary's Markdown and in the single-line outputs: one line,
//! no Markdown or HTML of its own, no secret. Every writer of the summary and of those outputs
//! goes through here.
//!
//! Written by hand: no well-kept crate escapes GitHub-flavoured Markdown for a table cell (the
//! crates that exist escape HTML only, or Markdown without the table's `|`), and CommonMark's
//! rule is short: a backslash before any ASCII punctuation makes it a literal character, and
//! a code span shows its content as it is, HTML included.

use crate::secret::redact;

/// `text` on one line: every control character (`\n`, `\r`, a tab, an escape), Unicode's line
/// and paragraph separators and its bidirectional controls become a space, and known secrets
/// are redacted. For an output that is one line per value.
pub fn one_line(text: &str) -> String {
    redact(text)
        .chars()
        .map(|c| {
            if c.is_control() || invisible(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Characters that break a line or reorder what is shown around them without showing
/// themselves: U+2028 and U+2029, and the bidirectional marks, embeddings, overrides and
/// isolates, with which a tag or a check's detail reads as other text than it is.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// ASCII punctuation that means something inside a table cell of GitHub's Markdown (inline
/// content only: no heading or list starts there): emphasis and strikethrough, code, links and
/// images (`(` and `)` mean nothing without `[`), HTML tags and entities, math, the cell's `|`,
/// and `#`, escaped as well so no reader of the raw text takes it for a heading.
const MEANINGFUL: &[char] = &[
    '\\', '`', '*', '_', '[', ']', '<', '>', '#', '!', '|', '&', '~', '$',
];

/// `text` as plain text in a table cell: one line, every meaningful punctuation mark
/// backslash-escaped, so it renders as the characters it is.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in one_line(text).chars() {
        if MEANINGFUL.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` as a code span in a table cell: one line, delimited by more backticks than it holds
/// in a row, and `|` escaped (a table splits its cells before it reads code spans).
pub fn code(text: &str) -> String {
    let line = one_line(text).replace('|', "\\|");
    if line.trim().is_empty() {
        return line;
    }
    let longest = line.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick needs a space between it and the fence
    // (one space each side is stripped when rendered).
    let pad = if line.starts_with('`') || line.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{line}{pad}{fence}")
}

/// One of this program's messages, which mark names with backticks ("expected `v1`, found
/// `v2`") and quote outside text there: each marked part as a [`code`] span, the rest as
/// [`text`]. Outside text holding backticks of its own only moves the marks; every part stays
/// inert either way.
pub fn message(message: &str) -> String {
    let line = one_line(message);
    let parts: Vec<&str> = line.split('`').collect();
    // An odd number of backticks leaves the last one unpaired: it stays literal text.
    let paired = if parts.len() % 2 == 1 {
        parts.len()
    } else {
        parts.len() - 1
    };
    let mut out = String::new();
    for (i, part) in parts[..paired].iter().enumerate() {
        if i % 2 == 1 {
            out.push_str(&code(part));
        } else {
            out.push_str(&text(part));
        }
    }
    if paired < parts.len() {
        out.push_str(&text(&format!("`{}", parts[paired..].join("`"))));
    }
    out
}

/// A link to `url` labelled `label` when `url` is plain `https://` (a page GitHub's API named);
/// anything else shows as text.
pub fn link(label: &str, url: &str) -> String {
    let plain = url.starts_with("https://")
        && !url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "()<>[]\\`\"'|".contains(c));
    if plain {
        format!("[{}]({url})", text(label))
    } else {
        format!("{} ({})", text(label), code(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_one_line_without_markup() {
        let hostile = "denied\n### Owned\r\n![x](https://evil.example/a.png) | a | b |\n<img src=x onerror=alert(1)> **bold** `code` &amp; www.evil.example";
        let escaped = text(hostile);
        assert!(!escaped.contains(['\n', '\r']), "{escaped}");
        // Every mark that means something is escaped: a literal character, no markup.
        let mut chars = escaped.chars();
        while let Some(c) = chars.next() {
            assert!(c != '\\' || chars.next().is_some(), "{escaped}");
            assert!(!MEANINGFUL.contains(&c) || c == '\\', "`{c}` in {escaped}");
        }
        assert!(
            escaped.starts_with(r"denied \#\#\# Owned  \!\[x\](https:"),
            "{escaped}"
        );
        assert_eq!(text("plain words 42"), "plain words 42");
    }

    #[test]
    fn code_spans_hold_any_text() {
        assert_eq!(code("v1.2.3"), "`v1.2.3`");
        assert_eq!(code("a|b\rc"), "`a\\|b c`");
        assert_eq!(code("x ``y` z"), "```x ``y` z```");
        assert_eq!(code("`edge"), "`` `edge ``");
        assert_eq!(code("<img src=x>"), "`<img src=x>`");
        assert_eq!(code(""), "");
    }

    #[test]
    fn messages_keep_their_marked_names_as_code() {
        assert_eq!(
            message("expected `v1`, found `a\rb|<img>`"),
            "expected `v1`, found `a b\\|<img>`"
        );
        assert_eq!(
            message("denied user `bot` (### Owned)"),
            "denied user `bot` (\\#\\#\\# Owned)"
        );
        // An unpaired backtick stays text.
        assert_eq!(message("a `b` c ` d"), "a `b` c \\` d");
    }

    #[test]
    fn links_only_to_plain_https() {
        assert_eq!(
            link("42", "https://github.com/acme/app/attestations/42"),
            "[42](https://github.com/acme/app/attestations/42)"
        );
        assert_eq!(
            link("42", "javascript:alert(1)"),
            "42 (`javascript:alert(1)`)"
        );
        assert_eq!(
            link("42", "https://x.example/a) ![i](https://evil"),
            "42 (`https://x.example/a) ![i](https://evil`)"
        );
    }

    #[test]
    fn line_separators_and_bidirectional_controls_become_spaces() {
        // `v1.0` shown as `v0.1` and a second line, in a summary and in an output.
        let spoof = "v\u{202E}0.1\u{202C} ok\u{2028}verified\u{2029}\u{2066}x\u{2069}\u{200F}";
        assert_eq!(one_line(spoof), "v 0.1  ok verified  x  ");
        assert_eq!(text(spoof), "v 0.1  ok verified  x  ");
        assert_eq!(code(spoof), "`v 0.1  ok verified  x  `");
    }

    #[test]
    fn secrets_are_redacted_before_escaping() {
        let _s = crate::secret::Secret::new("pw+with/chars==");
        assert_eq!(text("sent pw+with/chars=="), "sent \\*\\*\\*");
        assert_eq!(one_line("a\npw+with/chars==\r"), "a *** ");
    }
}
