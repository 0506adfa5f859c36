//! The runner's side channels: workflow commands on stdout (`::group::`, `::error::`,
//! `::add-mask::`, ...), the `GITHUB_OUTPUT` file with random heredoc delimiters, and the
//! `GITHUB_STEP_SUMMARY` Markdown file.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use rand::Rng;

/// Escapes a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a plain log line so the runner cannot read it, or a part of it, as a command: escaped
/// like a command's message (no line break starts a new line), then [`defuse`]d.
pub fn escape_log(s: &str) -> String {
    defuse(&escape_data(s))
}

/// Breaks up, line by line, what the runner reads as a command in plain output: a leading `::`
/// and the older `##[command]` form, which it finds anywhere in a line. The runner ends a line
/// at `\n` or `\r`. Nothing else changes, so the CLI's stderr (which the runner also reads in a
/// `run:` step) goes through it unchanged in the ordinary case.
pub fn defuse(text: &str) -> String {
    text.split_inclusive(['\n', '\r'])
        .map(|line| {
            let line = line.replace("##[", "##%5B");
            let body = line.trim_start();
            if body.starts_with("::") {
                let indent = &line[..line.len() - body.len()];
                format!("{indent}%3A{}", &body[1..])
            } else {
                line
            }
        })
        .collect()
}

/// Escapes a workflow command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::add-mask::` lines for a secret, one per line of it (the runner masks line by line).
pub fn mask_lines(secret: &str) -> Vec<String> {
    let mut lines: Vec<String> = secret
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("::add-mask::{}", escape_data(l)))
        .collect();
    if secret.trim().lines().count() > 1 {
        lines.insert(0, format!("::add-mask::{}", escape_data(secret.trim())));
    }
    lines
}

/// An `::error title=...::message` line.
pub fn error_line(title: &str, message: &str) -> String {
    format!(
        "::error title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

/// Appends `outputs` to the `GITHUB_OUTPUT` file, each as a heredoc with a random delimiter.
pub fn write_outputs(path: &Path, outputs: &[(&str, String)]) -> io::Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        let delimiter = loop {
            let d = format!("ghadelimiter_{:032x}", rand::rng().random::<u128>());
            if !value.contains(&d) {
                break d;
            }
        };
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    append(path, &text)
}

/// Appends Markdown to the `GITHUB_STEP_SUMMARY` file.
pub fn append_summary(path: &Path, markdown: &str) -> io::Result<()> {
    append(path, markdown)
}

fn append(path: &Path, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())
}

/// Parses a `GITHUB_OUTPUT` file as the runner does (for tests and for reading back).
pub fn parse_outputs(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            out.push((name.to_owned(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_owned(), value.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_round_trip_with_multiline_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let outputs = [
            ("digest", "sha256:x".to_owned()),
            ("tags", "a\nb".to_owned()),
        ];
        write_outputs(&path, &outputs).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("digest<<ghadelimiter_"));
        let parsed = parse_outputs(&text);
        assert_eq!(parsed[0], ("digest".into(), "sha256:x".into()));
        assert_eq!(parsed[1], ("tags".into(), "a\nb".into()));
    }

    #[test]
    fn commands_escape() {
        assert_eq!(
            error_line("a:b,c", "50%\nnext"),
            "::error title=a%3Ab%2Cc::50%25%0Anext"
        );
        assert_eq!(mask_lines("one\ntwo").len(), 3);
    }

    #[test]
    fn log_lines_cannot_start_a_command() {
        assert_eq!(
            escape_log("wrote x\n::error title=A::b\r\n::add-mask::c"),
            "wrote x%0A::error title=A::b%0D%0A::add-mask::c"
        );
        assert_eq!(escape_log("  ::add-mask::c"), "  %3A:add-mask::c");
        assert_eq!(escape_log("pulled ##[add-mask]c"), "pulled ##%5Badd-mask]c");
        assert_eq!(escape_log("100% done"), "100%25 done");
        assert_eq!(
            defuse("error: x\n::error::y\r  ::add-mask::z ##[group]\n"),
            "error: x\n%3A:error::y\r  %3A:add-mask::z ##%5Bgroup]\n"
        );
        assert_eq!(defuse("INFO wrote app.wasm\n"), "INFO wrote app.wasm\n");
    }
}
