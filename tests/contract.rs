//! The action contract is tested, not described twice: action.yml, the code's input list, the
//! CLI flags and the README tables must name the same inputs and outputs.

use std::collections::BTreeSet;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The keys directly under a top-level `section:` of action.yml (two-space indent).
fn action_yml_keys(section: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(format!("{ROOT}/action.yml")).unwrap();
    let mut keys = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            inside = line.trim_end() == format!("{section}:");
            continue;
        }
        if inside {
            if let Some(rest) = line.strip_prefix("  ") {
                if !rest.starts_with(' ') {
                    if let Some(key) = rest.trim_end().strip_suffix(':') {
                        keys.insert(key.to_owned());
                    }
                }
            }
        }
    }
    keys
}

/// The first-column names of the README table under `## {heading}`.
fn readme_table(heading: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let section = text
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("README has no `## {heading}` section"));
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l[3..].split('`').next().unwrap().to_owned())
        .collect()
}

#[test]
fn action_inputs_are_the_inputs_the_code_reads() {
    let yml = action_yml_keys("inputs");
    let code: BTreeSet<String> = wasm_oci::request::INPUT_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(!yml.is_empty());
    assert_eq!(yml, code, "action.yml inputs vs request::INPUT_NAMES");
}

#[test]
fn readme_documents_every_input_and_output() {
    assert_eq!(
        readme_table("Inputs"),
        action_yml_keys("inputs"),
        "README inputs table"
    );
    assert_eq!(
        readme_table("Outputs"),
        action_yml_keys("outputs"),
        "README outputs table"
    );
}

#[test]
fn every_input_is_also_a_cli_flag_and_env_var() {
    use clap::CommandFactory;
    let cli = wasm_oci::cli::Cli::command();
    let flags: BTreeSet<(String, String)> = cli
        .get_subcommands()
        .flat_map(|sub| sub.get_arguments())
        .filter_map(|arg| {
            Some((
                arg.get_long()?.to_owned(),
                arg.get_env()?.to_string_lossy().into_owned(),
            ))
        })
        .collect();
    for input in wasm_oci::request::INPUT_NAMES {
        if *input == "command" {
            continue;
        }
        let var = format!("WASM_OCI_{}", input.to_uppercase().replace('-', "_"));
        assert!(
            flags.contains(&(input.to_string(), var.clone())),
            "input `{input}` has no CLI flag `--{input}` bound to `{var}`"
        );
    }
}

#[test]
fn container_action_runs_the_action_entrypoint() {
    let yml = std::fs::read_to_string(format!("{ROOT}/action.yml")).unwrap();
    assert!(yml.contains("using: docker"));
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap();
    assert!(
        !dockerfile
            .lines()
            .any(|l| l.trim_start().starts_with("WORKDIR")),
        "GitHub container actions must not set WORKDIR"
    );
    assert!(
        dockerfile.lines().any(|l| l.starts_with("ENTRYPOINT [\"/")),
        "exec-form absolute ENTRYPOINT"
    );
}
