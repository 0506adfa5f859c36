//! The action contract is tested, not described twice: action.yml (parsed as YAML), the code's
//! inputs, defaults and outputs, the CLI flags and the README tables must agree.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde::Deserialize;
use wasm_oci::input::{self, Input};
use wasm_oci::inputs::Inputs;
use wasm_oci::push::PushRequest;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The parts of action.yml the contract is about.
#[derive(Debug, Deserialize)]
struct Action {
    inputs: BTreeMap<String, ActionInput>,
    outputs: BTreeMap<String, ActionOutput>,
    runs: Runs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionInput {
    description: String,
    #[serde(default)]
    required: bool,
    /// A string: the runner passes every value as text.
    default: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionOutput {
    description: String,
}

#[derive(Debug, Deserialize)]
struct Runs {
    using: String,
    image: String,
    args: Vec<String>,
}

fn action() -> Action {
    let text = std::fs::read_to_string(format!("{ROOT}/action.yml")).unwrap();
    serde_norway::from_str(&text).expect("action.yml parses")
}

/// The action.yml default of an input as the code sees it: `None` when empty or absent.
fn yml_default(input: &ActionInput) -> Option<&str> {
    input.default.as_deref().filter(|d| !d.is_empty())
}

/// A default the runner evaluates before the code sees it (`${{ github.token }}`).
fn is_expression(value: &str) -> bool {
    value.starts_with("${{") && value.ends_with("}}")
}

/// Rows of the README table under `## {heading}`: first column (the name) to second column.
fn readme_table(heading: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let section = text
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("README has no `## {heading}` section"));
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let name = cells[0][3..].split('`').next().unwrap().to_owned();
            (name, cells.get(1).unwrap_or(&"").trim().to_owned())
        })
        .collect()
}

/// The library's source without its test modules, file by file.
fn library_source() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap().to_owned();
                out.push((path.display().to_string(), code));
            }
        }
    }
    let mut out = Vec::new();
    walk(&std::path::Path::new(ROOT).join("src"), &mut out);
    assert!(out.len() > 10, "src/ has the library");
    out
}

#[test]
fn action_inputs_are_the_inputs_the_code_reads() {
    let yml: BTreeSet<String> = action().inputs.into_keys().collect();
    let code: BTreeSet<String> = input::ALL.iter().map(|i| i.name.to_owned()).collect();
    assert!(!yml.is_empty());
    assert_eq!(yml, code, "action.yml inputs vs input::ALL");
    // Listed is not handled: some non-test code must read each input's value, by its entry.
    let source = library_source();
    for input in input::ALL {
        let entry = format!("input::{}", input.name.to_uppercase().replace('-', "_"));
        let readers = [
            format!(".get({entry})"),
            format!(".flag({entry})"),
            format!(".list({entry})"),
        ];
        assert!(
            source
                .iter()
                .any(|(_, code)| readers.iter().any(|r| code.contains(r.as_str()))),
            "input `{}` is declared but no code reads it (inputs.get/flag/list({entry}))",
            input.name
        );
    }
}

#[test]
fn action_defaults_are_the_code_defaults() {
    let action = action();
    for (name, input) in &action.inputs {
        match yml_default(input) {
            Some(value) if is_expression(value) => {
                // The runner evaluates it; the code sees a value, or nothing outside a workflow.
                assert_eq!(
                    (name.as_str(), value),
                    ("github-token", "${{ github.token }}"),
                    "only github-token defaults to an expression"
                );
                assert_eq!(Input::named(name).and_then(|i| i.default), None);
            }
            yml => assert_eq!(
                yml,
                Input::named(name).and_then(|i| i.default),
                "input `{name}`: action.yml default vs input::ALL"
            ),
        }
        if input.required {
            assert_eq!(yml_default(input), None, "required `{name}` has a default");
        }
        assert!(
            !input.description.is_empty(),
            "input `{name}` has no description"
        );
    }
    for (name, output) in &action.outputs {
        assert!(
            !output.description.is_empty(),
            "output `{name}` has no description"
        );
    }
    // The same by behaviour: a push given every action.yml default explicitly is the push given
    // nothing. (Build mode: this crate's root has a Cargo.toml.)
    let mut explicit = Inputs::default();
    let mut implicit = Inputs::default();
    for inputs in [&mut explicit, &mut implicit] {
        inputs.set(input::IMAGE, "oci:out");
    }
    for (name, input) in &action.inputs {
        if let Some(value) = yml_default(input).filter(|v| !is_expression(v)) {
            explicit.set(Input::named(name).unwrap(), value);
        }
    }
    assert_eq!(
        PushRequest::from_inputs(&explicit, &Default::default()).unwrap(),
        PushRequest::from_inputs(&implicit, &Default::default()).unwrap()
    );
}

#[test]
fn every_output_in_action_yml_is_written_and_none_other() {
    let ws = Workspace::new();
    let mut written: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut run = |command: &'static str, env: BTreeMap<String, String>| {
        let _ = std::fs::remove_file(ws.output_file());
        let run = ws.run_action(&env);
        assert!(run.success(), "{command}: {run:?}");
        written.insert(command, ws.outputs().into_keys().collect());
        ws.outputs()
    };
    let pushed = run("push", ws.multiply_env("oci:out", &[("tags", "1.2.3")]));
    let pinned = format!("oci:out@{}", pushed["digest"]);
    run(
        "pull",
        ws.action_env(&[("command", "pull"), ("image", "oci:out:1.2.3")]),
    );
    run(
        "verify",
        // The layout's provenance is unsigned (no OIDC token here), accepted knowingly.
        ws.action_env(&[
            ("command", "verify"),
            ("image", &pinned),
            ("require-signature", "false"),
        ]),
    );

    let declared: BTreeSet<String> = action().outputs.into_keys().collect();
    for (command, names) in &written {
        let undeclared: Vec<_> = names.difference(&declared).collect();
        assert!(
            undeclared.is_empty(),
            "{command} writes outputs action.yml does not declare: {undeclared:?}"
        );
    }
    let all: BTreeSet<String> = written.into_values().flatten().collect();
    let unwritten: Vec<_> = declared.difference(&all).collect();
    assert!(
        unwritten.is_empty(),
        "action.yml declares outputs no command writes: {unwritten:?}"
    );
}

#[test]
fn readme_tables_agree_with_action_yml() {
    let action = action();
    let inputs = readme_table("Inputs");
    assert_eq!(
        inputs.keys().collect::<BTreeSet<_>>(),
        action.inputs.keys().collect::<BTreeSet<_>>(),
        "README inputs table"
    );
    // The default column: a `value` is the action.yml default; words describe an empty one.
    for (name, shown) in &inputs {
        let yml = yml_default(&action.inputs[name]);
        let shown_value = shown
            .strip_prefix('`')
            .and_then(|s| s.strip_suffix('`'))
            .filter(|s| !s.contains('`'));
        assert_eq!(
            shown_value, yml,
            "README default of `{name}` is `{shown}`, action.yml's is {yml:?}"
        );
    }
    assert_eq!(
        readme_table("Outputs").keys().collect::<BTreeSet<_>>(),
        action.outputs.keys().collect::<BTreeSet<_>>(),
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
    for input in input::ALL.iter().map(|i| i.name) {
        if input == "command" {
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
    let runs = action().runs;
    assert_eq!(runs.using, "docker");
    assert_eq!(runs.args, ["action"]);
    // From source, or (on a release commit) the released image pinned by digest.
    let pinned = runs.image.starts_with("docker://ghcr.io/")
        && runs
            .image
            .split_once("@sha256:")
            .is_some_and(|(_, hex)| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        runs.image == "Dockerfile" || pinned,
        "runs.image: `{}`",
        runs.image
    );
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

#[test]
fn every_format_the_code_takes_is_named_in_action_yml_and_the_readme() {
    let action = action();
    let described = &action.inputs["format"].description;
    let readme = readme_table("Inputs");
    let row = readme
        .get("format")
        .expect("the README's Inputs table has `format`");
    let text = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let row_line = text
        .lines()
        .find(|l| l.starts_with("| `format` |"))
        .unwrap();
    assert_eq!(row, "`cncf`");
    for format in [
        wasm_oci::artifact::Format::Cncf,
        wasm_oci::artifact::Format::WasmToOci,
        wasm_oci::artifact::Format::Image,
    ] {
        let name = format!("`{format}`");
        assert_eq!(
            name[1..name.len() - 1].parse::<wasm_oci::artifact::Format>(),
            Ok(format)
        );
        assert!(
            described.contains(&name),
            "action.yml's `format` lacks {name}"
        );
        assert!(
            row_line.contains(&name),
            "the README's `format` row lacks {name}"
        );
    }
}
