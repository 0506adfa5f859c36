//! BENCHMARKS.md is written by several scripts, each its own sections (`bench/splice.py`): the
//! loopback report rewrites its sections and keeps the latency and default-image sections byte
//! for byte; the latency report replaces only its own.

use std::path::Path;
use std::process::Command;

const LATENCY: &str = "## Latency: a registry 30 and 100 ms away";
const DEFAULT_IMAGE: &str = "## The default image";
const STARTUP: &str = "## Start-up of the action's images";

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
    let startup = section(&committed, STARTUP).expect("BENCHMARKS.md has a start-up section");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("BENCHMARKS.md");
    std::fs::write(&out, &committed).unwrap();
    let report =
        "# Benchmarks\n\nnew preamble\n\n## Machine\n\nnew machine\n\n## Targets\n\nnew targets\n";
    // As scripts/bench.sh calls it.
    splice(
        &out,
        report,
        &["--all-but", DEFAULT_IMAGE, STARTUP, LATENCY],
    );

    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with(report), "{written}");
    assert_eq!(section(&written, LATENCY), Some(latency));
    assert_eq!(section(&written, DEFAULT_IMAGE), Some(image));
    assert_eq!(section(&written, STARTUP), Some(startup));
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

/// The targets table from a results directory as scripts/bench.sh leaves it: the push with
/// provenance is held to 1.1x the floor plus the fallback-tag settle, which has a line of its
/// own, and the push without provenance to 1.1x alone.
#[test]
fn the_push_target_allows_the_settle_and_reports_it_on_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let result = |command: &str, median: f64| serde_json::json!({"command": command, "median": median, "min": median, "max": median, "times": [median]});
    write("modules.tsv", "64\t67108864\tsha256:00\t5\n");
    write(
        "commands.tsv",
        "wasm-oci\tpush\tpush it\nwasm-oci\tpull\tpull it\ncurl-floor\tpush\tcurl\ncurl-floor\tpull\tcurl\nwasm-oci-no-provenance\tpush\tpush it --provenance false\n",
    );
    let hyperfine =
        |results: Vec<serde_json::Value>| serde_json::json!({ "results": results }).to_string();
    // 0.300 s ≤ 1.1 × 0.230 + 0.055 = 0.308; without provenance 0.250 / 0.230 = 1.09x.
    write(
        "push-64.json",
        &hyperfine(vec![
            result("wasm-oci", 0.300),
            result("curl-floor", 0.230),
            result("wasm-oci-no-provenance", 0.250),
        ]),
    );
    write(
        "pull-64.json",
        &hyperfine(vec![result("wasm-oci", 0.070), result("curl-floor", 0.068)]),
    );
    write("settle.tsv", "64\t54.0\n64\t55.0\n64\t70.0\n");
    write("image.tsv", "image\t17610000\n");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/bench/report.py"))
        .arg(dir.path())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    let targets = section(&report, "## Targets").unwrap();
    let row = |name: &str| {
        targets
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no `{name}` row:\n{targets}"))
            .to_owned()
    };
    let push = row("push of 64 MiB at most 1.1x the curl floor plus the fallback-tag settle");
    assert!(
        push.contains("0.300 s ≤ 1.1 × 0.230 s + 55 ms = 0.308 s"),
        "{push}"
    );
    assert!(push.ends_with("| yes |"), "{push}");
    let settle = row("the fallback-tag settle of that push at most 60 ms");
    assert!(settle.contains("55 ms (median of 3 pushes"), "{settle}");
    assert!(settle.ends_with("| yes |"), "{settle}");
    let bare = row("push of 64 MiB with `provenance: false` at most 1.1x the curl floor");
    assert!(
        bare.contains("= 1.09x") && bare.ends_with("| yes |"),
        "{bare}"
    );
    let slim = row("slim image under 20 MB");
    assert!(slim.ends_with("| yes |"), "{slim}");
}
