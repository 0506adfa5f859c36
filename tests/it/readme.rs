//! The README as a new user reads it: short, in the order a first run needs (requirements, the
//! quick start, then which ref to pin), and every link in it leads somewhere.

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Long enough for the usage, short enough to read: longer material goes in its own document.
const MAX_LINES: usize = 350;

fn readme() -> String {
    std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap()
}

/// The `##` and `###` headings, outside code blocks.
fn headings(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && let Some(h) = line.strip_prefix("## ").or(line.strip_prefix("### ")) {
            out.push(h.to_owned());
        }
    }
    out
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every `](target)` link target outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        for (at, _) in line.match_indices("](") {
            let rest = &line[at + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_owned());
            }
        }
    }
    out
}

#[test]
fn the_readme_is_short_and_in_first_run_order() {
    let text = readme();
    let lines = text.lines().count();
    assert!(
        lines < MAX_LINES,
        "README.md has {lines} lines; keep it under {MAX_LINES} and move long material to its own document"
    );
    let headings = headings(&text);
    let position = |name: &str| {
        headings
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("README has no `{name}` section: {headings:?}"))
    };
    let contents = position("Contents");
    let requirements = position("Requirements");
    let quick_start = position("Quick start");
    let versions = position("Versions and pinning");
    assert!(contents < requirements && requirements < quick_start);
    assert_eq!(
        versions,
        quick_start + 1,
        "versions right after the quick start"
    );
    for later in ["The CLI", "How it compares"] {
        assert!(
            position(later) > position("Inputs"),
            "`{later}` after the action's usage"
        );
    }
}

#[test]
fn every_readme_link_leads_somewhere() {
    let text = readme();
    let anchors: Vec<String> = headings(&text).iter().map(|h| anchor(h)).collect();
    let links = links(&text);
    assert!(
        links.iter().any(|l| l.starts_with('#')),
        "a table of contents"
    );
    for link in links {
        if link.starts_with("http://") || link.starts_with("https://") {
            continue;
        }
        if let Some(fragment) = link.strip_prefix('#') {
            assert!(
                anchors.iter().any(|a| a == fragment),
                "`#{fragment}` names no README heading; headings: {anchors:?}"
            );
        } else {
            let path = link.split('#').next().unwrap();
            assert!(
                Path::new(ROOT).join(path).exists(),
                "README links to `{path}`, which does not exist"
            );
        }
    }
}

#[test]
fn anchors_follow_github() {
    assert_eq!(anchor("A `.wasm` built earlier"), "a-wasm-built-earlier");
    assert_eq!(anchor("Pull requests (dry run)"), "pull-requests-dry-run");
    assert_eq!(anchor("Versions and pinning"), "versions-and-pinning");
}
