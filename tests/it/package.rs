//! What is published. The crate as crates.io gets it: `cargo package --list` holds the sources,
//! the license and the README, and nothing that needs the rest of the repository; and
//! cargo-binstall's metadata names the static binaries the release workflow uploads. (`.ci/run`
//! builds the package itself with `cargo package`: a build, so not a test.) The action as the
//! GitHub Marketplace lists it: action.yml's name, description and branding.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_norway::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The files `cargo package` would publish.
fn packaged() -> BTreeSet<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "package",
            "--list",
            "--locked",
            "--no-verify",
            "--allow-dirty",
        ])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo package --list:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The paths given to `include_str!` / `include_bytes!` in `text`.
fn included_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for macro_name in ["include_str!(\"", "include_bytes!(\""] {
        for (at, _) in text.match_indices(macro_name) {
            let rest = &text[at + macro_name.len()..];
            if let Some(end) = rest.find('"') {
                paths.push(rest[..end].to_owned());
            }
        }
    }
    paths
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_package_holds_the_sources_and_nothing_that_needs_the_repository() {
    let files = packaged();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "LICENSE",
        "README.md",
        "src/main.rs",
    ] {
        assert!(
            files.contains(needed),
            "{needed} is not packaged: {files:?}"
        );
    }
    // Every source file, and every file the sources include at compile time.
    let root = Path::new(ROOT);
    let mut sources = Vec::new();
    rust_files(&root.join("src"), &mut sources);
    let mut compiled_in = BTreeSet::new();
    for source in &sources {
        let relative = source.strip_prefix(root).unwrap();
        let name = relative.to_str().unwrap().replace('\\', "/");
        assert!(files.contains(&name), "{name} is not packaged");
        let text = std::fs::read_to_string(source).unwrap();
        for included in included_paths(&text) {
            let path = source.parent().unwrap().join(&included);
            let path = path.canonicalize().unwrap();
            let name = path.strip_prefix(root).unwrap().to_str().unwrap();
            compiled_in.insert(name.to_owned());
            assert!(
                files.contains(name),
                "{} includes {included}, which is not packaged",
                relative.display()
            );
        }
    }
    // The tests, examples, workflows and benchmark run from the repository only.
    let repository_only = [
        "tests/",
        "examples/",
        ".github/",
        ".ci/",
        "bench/",
        "scripts/",
    ];
    let stray: Vec<&String> = files
        .iter()
        .filter(|f| {
            repository_only.iter().any(|dir| f.starts_with(dir)) && !compiled_in.contains(*f)
        })
        .collect();
    assert!(
        stray.is_empty(),
        "packaged but needs the repository: {stray:?}"
    );
}

#[test]
fn included_paths_reads_both_macros() {
    assert_eq!(
        included_paths(r#"const A: &str = include_str!("../a.txt"); include_bytes!("b.bin")"#),
        ["../a.txt", "b.bin"]
    );
}

/// cargo-binstall's `{ key }` template, filled in.
fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{ {key} }}"), value);
    }
    assert!(!out.contains('{'), "unknown template key left in `{out}`");
    out
}

#[test]
fn binstall_names_the_release_binaries() {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(format!("{ROOT}/Cargo.toml"))
        .no_deps()
        .exec()
        .unwrap();
    let package = &metadata.packages[0];
    let binstall = &package.metadata["binstall"];
    // The release uploads the bare executables, not archives.
    assert_eq!(binstall["pkg-fmt"], "bin");
    let template = binstall["pkg-url"].as_str().expect("pkg-url");
    let version = package.version.to_string();
    let repo = package.repository.as_deref().unwrap();

    // What the release workflow uploads, read from it: the file name its build job gives each
    // matrix arch, attached to the GitHub release of the tag (`v` + the crate's version).
    let text = std::fs::read_to_string(format!("{ROOT}/.github/workflows/release.yml")).unwrap();
    let workflow: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(
        workflow["on"]["push"]["tags"][0], "v*.*.*",
        "release tags are v + the version"
    );
    let name_line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("name=\"wasm-oci-"))
        .expect("the release names its binaries `name=\"wasm-oci-...\"`");
    let asset_template = format!("wasm-oci-{}", name_line.trim_end_matches('"'));
    assert!(
        text.contains("gh release create \"$GITHUB_REF_NAME\" dist/*"),
        "the binaries are attached to the tag's release"
    );
    let archs: Vec<&str> = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|entry| entry["arch"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["x86_64", "aarch64"]);

    let tag = format!("v{version}");
    for arch in archs {
        let asset = asset_template
            .replace("${GITHUB_REF_NAME}", &tag)
            .replace("${ARCH}", arch);
        let released = format!("{repo}/releases/download/{tag}/{asset}");
        let target = format!("{arch}-unknown-linux-musl");
        let url = render(
            template,
            &[
                ("repo", repo),
                ("name", &package.name),
                ("version", &version),
                ("target", &target),
            ],
        );
        assert_eq!(url, released, "binstall's URL for {target}");
    }
}

#[test]
fn the_marketplace_listing_has_what_it_shows() {
    let text = std::fs::read_to_string(format!("{ROOT}/action.yml")).unwrap();
    let action: Value = serde_norway::from_str(&text).unwrap();
    let name = action["name"].as_str().unwrap();
    // Marketplace names are unique: the tool's own name keeps this one apart from other Wasm and
    // OCI actions.
    assert!(name.starts_with("wasm-oci"), "{name}");
    let description = action["description"].as_str().unwrap();
    assert!(
        description.chars().count() < 125,
        "the Marketplace refuses a description of 125 characters or more: {description}"
    );
    // A Feather icon, and one of the colours the metadata syntax allows.
    assert!(
        action["branding"]["icon"]
            .as_str()
            .is_some_and(|i| !i.is_empty())
    );
    let colors = [
        "white",
        "black",
        "yellow",
        "blue",
        "green",
        "orange",
        "red",
        "purple",
        "gray-dark",
    ];
    let color = action["branding"]["color"].as_str().unwrap_or_default();
    assert!(colors.contains(&color), "branding color `{color}`");
}
