//! Layouts stay where they were named: in action mode inside the workspace, and on every front
//! door never through a symbolic link planted in the checkout (the layout's directory, `blobs/`,
//! `blobs/sha256/`, `index.json`), which would make the action, as root, write elsewhere.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::common;

use common::*;

/// Every file under `dir`, with its contents, to see that nothing there changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(snapshot(&path));
        } else {
            found.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    found.sort();
    found
}

/// A real layout outside the workspace, made by the CLI, as another job's would be.
fn layout_outside(ws: &Workspace) -> PathBuf {
    layout_in(&ws.dir.path().join("outside"))
}

/// A real layout `lay` in `outside`, tagged `theirs`.
fn layout_in(outside: &Path) -> PathBuf {
    std::fs::create_dir_all(outside).unwrap();
    std::fs::copy(multiply_wasm(), outside.join("m.wasm")).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_wasm-oci"))
        .args(["push", "m.wasm", "oci:lay", "--tags", "theirs"])
        .current_dir(outside)
        .env("SOURCE_DATE_EPOCH", "0")
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    outside.join("lay")
}

/// A dry-run push of a module in action mode with `inputs` besides.
fn dry_run(ws: &Workspace, inputs: &[(&str, &str)]) -> Run {
    let mut all = vec![("tags", "planted"), ("dry-run", "true")];
    all.extend_from_slice(inputs);
    ws.run_action(&ws.multiply_env("127.0.0.1:9/acme/app", &all))
}

fn assert_refused(run: &Run, says: &str) {
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].contains(says), "{run:?}");
}

#[test]
fn a_dry_run_layout_outside_the_workspace_is_refused() {
    let ws = Workspace::new();
    let outside = ws.dir.path().join("outside");
    for layout in [
        "../outside/lay".to_owned(),
        outside.join("abs").display().to_string(),
    ] {
        let run = dry_run(&ws, &[("dry-run-layout", &layout)]);
        assert_refused(&run, "outside the workspace");
        assert!(run.error_lines()[0].contains("dry-run-layout"), "{run:?}");
    }
    assert!(
        !outside.exists(),
        "something was written outside the workspace"
    );
}

#[test]
fn an_oci_destination_outside_the_workspace_is_refused() {
    let ws = Workspace::new();
    let run = ws.run_action(&ws.multiply_env("oci:../outside/lay", &[("tags", "v1")]));
    assert_refused(&run, "outside the workspace");
    assert!(!ws.dir.path().join("outside").exists());
    // A pull from there is refused the same way.
    let layout = layout_outside(&ws);
    let run = ws.run_action(&ws.action_env(&[
        ("command", "pull"),
        ("image", &format!("oci:{}:theirs", layout.display())),
        ("output", "got.wasm"),
    ]));
    assert_refused(&run, "outside the workspace");
    assert!(!ws.root().join("got.wasm").exists());
}

#[test]
fn a_planted_dry_run_layout_link_adds_no_tag_to_another_layout() {
    // A link to a layout elsewhere on the runner leads outside the workspace.
    let ws = Workspace::new();
    let theirs = layout_outside(&ws);
    let before = snapshot(&theirs);
    symlink(&theirs, ws.root().join("wasm-oci-dry-run")).unwrap();
    let run = dry_run(&ws, &[]);
    assert_refused(&run, "outside the workspace");
    assert_eq!(snapshot(&theirs), before, "the other layout changed");

    // A link to another layout in the workspace is refused for being a link.
    let ws = Workspace::new();
    let theirs = layout_in(&ws.root().join("release"));
    let before = snapshot(&theirs);
    symlink(&theirs, ws.root().join("wasm-oci-dry-run")).unwrap();
    let run = dry_run(&ws, &[]);
    assert_refused(&run, "symbolic link");
    assert_eq!(snapshot(&theirs), before, "the other layout changed");
}

#[test]
fn planted_links_inside_a_layout_are_refused_on_the_cli_too() {
    for planted in ["blobs", "blobs/sha256", "index.json"] {
        let ws = Workspace::new();
        let theirs = layout_outside(&ws);
        let before = snapshot(&theirs);
        let lay = ws.root().join("lay");
        std::fs::create_dir_all(lay.join("blobs/sha256")).unwrap();
        std::fs::write(lay.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(
            lay.join("index.json"),
            r#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        let at = lay.join(planted);
        if at.is_dir() {
            std::fs::remove_dir_all(&at).unwrap();
        } else {
            std::fs::remove_file(&at).unwrap();
        }
        symlink(theirs.join(planted), &at).unwrap();
        std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();

        let run = ws.run_cli(
            &["push", "m.wasm", "oci:lay", "--tags", "planted"],
            &[("SOURCE_DATE_EPOCH", "0")],
        );
        assert!(!run.success(), "{planted}: {run:?}");
        assert!(run.stderr.contains("symbolic link"), "{planted}: {run:?}");
        assert_eq!(
            snapshot(&theirs),
            before,
            "{planted}: the other layout changed"
        );

        let env = ws.multiply_env("oci:lay", &[("tags", "planted")]);
        let run = ws.run_action(&env);
        assert_refused(&run, "symbolic link");
        assert_eq!(
            snapshot(&theirs),
            before,
            "{planted}: the other layout changed"
        );
    }
}
