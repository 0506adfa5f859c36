//! BENCHMARKS.md is written by several scripts, each its own sections (`bench/splice.py`): the
//! loopback report rewrites its sections and keeps the latency and default-image sections byte
//! for byte; the latency report replaces only its own.

use std::path::Path;
use std::process::Command;

const LATENCY: &str = "## Latency: a registry 30 and 100 ms away";
const DEFAULT_IMAGE: &str = "## The default image";

/// The text of the section under `heading` (up to the next `## ` heading), if any.
fn section<'a>(text: &'a str, heading: &str) -> Option<&'a str> {
    let start = text.find(&format!("\n{heading}\n"))? + 1;
    let rest = &text[start + heading.len()..];
    let end = rest
        .find("\n## ")
        .map_or(text.len(), |i| start + heading.len() + i + 1);
    Some(&text[start..end])
}

fn splice(out: &Path, new: &str, args: &[&str]) {
    let new_file = out.with_extension("new.md");
    std::fs::write(&new_file, new).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new("python3")
        .arg(format!("{root}/bench/splice.py"))
        .arg(out)
        .arg(&new_file)
        .args(args)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "splice.py failed");
}

#[test]
fn loopback_report_keeps_the_latency_and_default_image_sections() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/BENCHMARKS.md")).unwrap();
    let latency = section(&committed, LATENCY).expect("BENCHMARKS.md has a latency section");
    let image =
        section(&committed, DEFAULT_IMAGE).expect("BENCHMARKS.md has a default image section");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("BENCHMARKS.md");
    std::fs::write(&out, &committed).unwrap();
    let report =
        "# Benchmarks\n\nnew preamble\n\n## Machine\n\nnew machine\n\n## Targets\n\nnew targets\n";
    splice(&out, report, &["--all-but", DEFAULT_IMAGE, LATENCY]);

    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with(report), "{written}");
    assert_eq!(section(&written, LATENCY), Some(latency));
    assert_eq!(section(&written, DEFAULT_IMAGE), Some(image));
    // The report's old sections are gone: those it did not write this time too.
    assert!(!written.contains("\n## 64 MiB module\n"), "{written}");
    assert_eq!(written.matches("## Machine").count(), 1);
}

#[test]
fn latency_report_replaces_only_its_section() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/BENCHMARKS.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("BENCHMARKS.md");
    std::fs::write(&out, &committed).unwrap();
    let new = format!("{LATENCY}\n\nnew latency\n");
    splice(&out, &new, &["--own", LATENCY]);

    let written = std::fs::read_to_string(&out).unwrap();
    let before = &committed[..committed.find(LATENCY).unwrap()];
    assert_eq!(written, format!("{before}{new}"));
}
