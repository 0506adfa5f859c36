//! Text from outside reaches the step summary and the outputs only as inert text: a second
//! registry's refusal written in Markdown (a heading, an image, table rows, HTML), and an
//! annotation holding a carriage return, `|` and `<img>`, through push's summary and
//! `annotations` output and verify's summary rows. The real registries store the text; a proxy
//! answers the refusal a real registry would not word so.

use crate::common;

use common::proxy::{Fault, FaultProxy};
use common::raw::*;
use common::*;
use serde_json::json;

/// Markdown and HTML a registry or an annotation may carry.
const MARKUP: &str = "denied\n### Owned\r\n![pwn](https://evil.example/x.png)\n| injected | row |\n<img src=x onerror=alert(1)> **bold** ~gone~ $x$";

/// Whether `needle` occurs in `text` other than right after a backslash (escaped).
fn unescaped(text: &str, needle: &str) -> bool {
    text.match_indices(needle)
        .any(|(i, _)| !text[..i].ends_with('\\'))
}

/// `line` without its code spans (a run of backticks to the next run of as many), whose
/// content renders as it is, markup included.
fn outside_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let fence = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let after = &rest[start + fence..];
        let close = (0..after.len()).find(|&i| {
            after[i..].starts_with(&"`".repeat(fence))
                && !after[i + fence..].starts_with('`')
                && (i == 0 || !after[..i].ends_with('`'))
        });
        match close {
            Some(i) => rest = &after[i + fence..],
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Fails when `summary` holds markup from outside: a heading of its own, an image, a tag, a
/// row that is not one of ours.
fn assert_inert(summary: &str, rows: &[&str]) {
    let headings = summary.lines().filter(|l| l.starts_with('#')).count();
    assert_eq!(headings, 1, "{summary}");
    let text: String = summary
        .lines()
        .map(outside_code)
        .collect::<Vec<_>>()
        .join("\n");
    for markup in ["![", "<img", "**bold", "~gone", "$x"] {
        assert!(!unescaped(&text, markup), "`{markup}` in\n{summary}");
    }
    for line in summary.lines().filter(|l| l.starts_with('|')) {
        let cells = line.replace("\\|", "").matches('|').count();
        assert!(
            cells == 3 || cells == 4,
            "a row of its own: {line}\n{summary}"
        );
    }
    for row in rows {
        assert!(summary.contains(row), "{row} in\n{summary}");
    }
    assert!(!summary.contains("| injected | row |"), "{summary}");
}

#[test]
fn a_second_registrys_markdown_refusal_is_text_in_the_summary() {
    let (a, b) = (Registry::start(), Registry::start());
    let body = json!({"errors": [{"code": "DENIED", "message": MARKUP}]}).to_string();
    let refusing = FaultProxy::start(b.port, move |_, method, path| {
        if method == "PUT" && path.contains("/manifests/") {
            Fault::Answer(403, body.clone())
        } else {
            Fault::Pass
        }
    });
    let ws = Workspace::new();
    let images = format!("{}/acme/app, {}/acme/app", a.host(), refusing.host());
    let mut env = ws.multiply_env(&images, &[("tags", "1.2.3"), ("insecure", "true")]);
    env.insert("WASM_OCI_RETRY_MAX_ELAPSED".into(), "2".into());
    let run = ws.run_action(&env);
    assert!(!run.success(), "{run:?}");
    let summary = ws.summary();
    let refused = format!(
        "| Registry | `{}/acme/app`: **not pushed**:",
        refusing.host()
    );
    assert_inert(&summary, &[&refused, "\\#\\#\\# Owned", "\\!\\[pwn\\]"]);
    let row = summary.lines().find(|l| l.starts_with(&refused)).unwrap();
    assert!(row.contains("\\<img src=x onerror=alert(1)\\>"), "{row}");
}

#[test]
fn an_annotation_with_markup_is_one_line_of_text_in_push_and_verify() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let value = "1.0\r| x | <img src=x onerror=alert(1)> **bold**";
    let image = format!("{}/acme/app", registry.host());
    let env = ws.multiply_env(
        &image,
        &[
            ("tags", "1.2.3"),
            ("insecure", "true"),
            ("annotations", &format!("org.example.note={value}")),
        ],
    );
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    let raw = std::fs::read_to_string(ws.output_file()).unwrap();
    assert!(!raw.contains('\r'), "{raw:?}");
    let annotations = &ws.outputs()["annotations"];
    assert!(
        annotations
            .lines()
            .any(|l| l == "org.example.note=1.0 | x | <img src=x onerror=alert(1)> **bold**"),
        "{annotations:?}"
    );

    // Anyone with push access can write an annotation verify shows.
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "wasm",
        "os": "wasip1",
        "layerDigests": [sha256(&wasm)],
    }))
    .unwrap();
    let digest = push_raw(
        &registry,
        "acme/app",
        "planted",
        ("application/vnd.wasm.config.v0+json", &config),
        &[(&wasm, "application/wasm", None)],
        json!({"annotations": {"org.opencontainers.image.version": format!("{value}\n{MARKUP}")}}),
    );
    let ws = Workspace::new();
    let run = ws.run_action(&ws.action_env(&[
        ("command", "verify"),
        ("image", &format!("{image}@{digest}")),
        ("insecure", "true"),
        ("annotations", "org.opencontainers.image.version=1.0"),
    ]));
    assert!(!run.success(), "{run:?}");
    let summary = ws.summary();
    assert!(!summary.contains('\r'), "{summary:?}");
    assert_inert(
        &summary,
        &[
            "| annotation org.opencontainers.image.version | ❌ FAIL | expected `1.0`, found `1.0 \\| x \\| <img src=x onerror=alert(1)> **bold** denied ### Owned",
        ],
    );
}
