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
    #[serde(default)]
    env: BTreeMap<String, String>,
}

fn action() -> Action {
    action_in("")
}

/// The action.yml in `dir` (`""`: the root's).
fn action_in(dir: &str) -> Action {
    let path = std::path::Path::new(ROOT).join(dir).join("action.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

/// The sub-actions: the folder, the command it runs, and the reader whose inputs it declares.
const SUB_ACTIONS: [(&str, input::Reader); 3] = [
    ("push", input::Reader::Push),
    ("pull", input::Reader::Pull),
    ("verify", input::Reader::Verify),
];

/// The inputs a sub-action's `runs.env` fixes, with their values: the command, and for `push/`
/// locate mode.
fn fixed_inputs(dir: &str) -> BTreeMap<String, String> {
    let mut fixed = BTreeMap::from([("command".to_owned(), dir.to_owned())]);
    if dir == "push" {
        fixed.insert("build".into(), "none".into());
    }
    fixed
}

#[test]
fn each_sub_action_declares_its_commands_inputs_as_the_root_action_does() {
    let root = action();
    for (dir, reader) in SUB_ACTIONS {
        let sub = action_in(dir);
        let fixed = fixed_inputs(dir);
        let expected: BTreeSet<String> = input::ALL
            .iter()
            .filter(|i| i.read_by(reader) && !fixed.contains_key(i.name))
            .map(|i| i.name.to_owned())
            .collect();
        let declared: BTreeSet<String> = sub.inputs.keys().cloned().collect();
        assert_eq!(
            declared, expected,
            "{dir}/action.yml inputs vs the table's {reader:?}"
        );
        for (name, input) in &sub.inputs {
            let same = &root.inputs[name];
            assert_eq!(input.description, same.description, "{dir}: `{name}`");
            assert_eq!(
                yml_default(input),
                yml_default(same),
                "{dir}: `{name}` default"
            );
            // `push/` only locates: its `path` is required.
            let required = same.required || (dir, name.as_str()) == ("push", "path");
            assert_eq!(input.required, required, "{dir}: `{name}` required");
        }
        // The command (and push's locate mode) as the runner passes an input.
        let env: BTreeMap<String, String> = fixed
            .iter()
            .map(|(name, value)| (Input::named(name).unwrap().action_var(), value.clone()))
            .collect();
        assert_eq!(sub.runs.env, env, "{dir}/action.yml runs.env");
        for (name, output) in &sub.outputs {
            assert_eq!(
                Some(&output.description),
                root.outputs.get(name).map(|o| &o.description),
                "{dir}: output `{name}`"
            );
        }
    }
    assert!(
        action().runs.env.is_empty(),
        "the root action takes `command` as an input"
    );
}

/// What the table says a command does not read, it does not: each such input set to a value no
/// reader would take changes nothing in the request.
#[test]
fn a_command_reads_no_input_the_table_leaves_out() {
    use wasm_oci::pull::PullRequest;
    use wasm_oci::verify::VerifyRequest;
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    let dir = ws.root().display().to_string();
    let base = |reader: input::Reader| {
        let mut inputs = Inputs::default();
        inputs.set(input::WORKING_DIRECTORY, &dir);
        match reader {
            input::Reader::Push => {
                inputs.set(input::IMAGE, "oci:out");
                inputs.set(input::PATH, "multiply.wasm");
                inputs.set(input::BUILD, "none");
            }
            input::Reader::Build => {
                inputs.set(input::IMAGE, "oci:out");
                inputs.set(
                    input::WORKING_DIRECTORY,
                    &format!("{ROOT}/examples/multiply"),
                );
            }
            _ => inputs.set(input::IMAGE, "oci:out:1.0.0"),
        }
        inputs
    };
    let parse = |reader: input::Reader, inputs: &Inputs| -> String {
        match reader {
            input::Reader::Push | input::Reader::Build => {
                format!(
                    "{:?}",
                    PushRequest::from_inputs(inputs, &Default::default()).unwrap()
                )
            }
            input::Reader::Pull => format!(
                "{:?}",
                PullRequest::from_inputs(inputs, &Default::default()).unwrap()
            ),
            input::Reader::Verify => {
                let job = Some("https://github.com/acme/multiply".to_owned());
                format!(
                    "{:?}",
                    VerifyRequest::from_inputs(inputs, &Default::default(), job).unwrap()
                )
            }
        }
    };
    for reader in [
        input::Reader::Push,
        input::Reader::Build,
        input::Reader::Pull,
        input::Reader::Verify,
    ] {
        let reads = |i: &Input| {
            i.read_by(reader) || (reader == input::Reader::Build && i.read_by(input::Reader::Push))
        };
        let mut cluttered = base(reader);
        // `push/` fixes `build` (to `none`) as it fixes `command`.
        let fixed = |i: &Input| reader == input::Reader::Push && *i == input::BUILD;
        for other in input::ALL.iter().filter(|i| !reads(i) && !fixed(i)) {
            cluttered.set(*other, "no reader takes this \u{7} [value]");
        }
        assert_eq!(
            parse(reader, &cluttered),
            parse(reader, &base(reader)),
            "{reader:?} read an input the table does not give it"
        );
    }
}

#[test]
fn each_sub_action_writes_the_outputs_it_declares_and_none_other() {
    let ws = Workspace::new();
    let mut written: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut run = |dir: &'static str, inputs: &[(&str, &str)]| {
        let _ = std::fs::remove_file(ws.output_file());
        let mut env = ws.action_env(inputs);
        for (name, value) in fixed_inputs(dir) {
            env.insert(Input::named(&name).unwrap().action_var(), value);
        }
        let run = ws.run_action(&env);
        assert!(run.success(), "{dir}: {run:?}");
        written.insert(dir, ws.outputs().into_keys().collect());
        ws.outputs()
    };
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    let pushed = run(
        "push",
        &[
            ("image", "oci:out"),
            ("path", "multiply.wasm"),
            ("tags", "1.2.3"),
        ],
    );
    let pinned = format!("oci:out@{}", pushed["digest"]);
    run("pull", &[("image", &pinned)]);
    // The provenance of a layout push here is unsigned.
    run(
        "verify",
        &[("image", &pinned), ("require-signature", "false")],
    );
    for (dir, names) in written {
        let declared: BTreeSet<String> = action_in(dir).outputs.into_keys().collect();
        assert_eq!(
            names, declared,
            "{dir}/action.yml outputs vs what {dir} writes"
        );
    }
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
    // The inputs table's third column names the sub-actions that take each input.
    let text = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let section = text.split("\n## Inputs\n").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    assert!(section.contains("| input | default | also in | meaning |"));
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let name = row[3..].split('`').next().unwrap();
        // (No cell of this table holds an escaped `|`.)
        let shown = row.split('|').nth(3).unwrap_or_default();
        let shown: BTreeSet<&str> = shown
            .split_whitespace()
            .map(|d| d.trim_matches('`').trim_end_matches('/'))
            .collect();
        let declared: BTreeSet<&str> = SUB_ACTIONS
            .iter()
            .map(|(dir, _)| *dir)
            .filter(|dir| action_in(dir).inputs.contains_key(name))
            .collect();
        assert_eq!(
            shown, declared,
            "README: the sub-actions that take `{name}`"
        );
    }
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
    assert!(
        runs.image == "Dockerfile" || pinned_image(&runs.image),
        "runs.image: `{}`",
        runs.image
    );
    for file in ["Dockerfile", "slim.Dockerfile"] {
        let dockerfile = std::fs::read_to_string(format!("{ROOT}/{file}")).unwrap();
        assert!(
            !dockerfile
                .lines()
                .any(|l| l.trim_start().starts_with("WORKDIR")),
            "GitHub container actions must not set WORKDIR ({file})"
        );
        assert!(
            dockerfile.lines().any(|l| l.starts_with("ENTRYPOINT [\"/")),
            "exec-form absolute ENTRYPOINT ({file})"
        );
    }
}

/// `ghcr.io/...@sha256:<64 hex>` after `docker://`: a published image pinned by digest.
fn pinned_image(image: &str) -> bool {
    image.starts_with("docker://ghcr.io/")
        && image
            .split_once("@sha256:")
            .is_some_and(|(_, hex)| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The stages of a Dockerfile by name, each its text up to the next `FROM`.
fn stages(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stage in text.split("\nFROM ").skip(1) {
        let name = stage.lines().next().unwrap().rsplit(" AS ").next().unwrap();
        // The comments above the next FROM belong to that stage.
        let body: Vec<&str> = stage.lines().filter(|l| !l.starts_with('#')).collect();
        out.insert(name.to_owned(), body.join("\n").trim().to_owned());
    }
    out
}

#[test]
fn each_sub_action_runs_the_slim_image() {
    for (dir, _) in SUB_ACTIONS {
        let runs = action_in(dir).runs;
        assert_eq!(runs.using, "docker", "{dir}");
        assert_eq!(runs.args, ["action"], "{dir}");
        // From source (the runner builds the last stage, with the Dockerfile's folder as the
        // context), or on a release commit the published slim image pinned by digest.
        assert!(
            runs.image == "../slim.Dockerfile" || pinned_image(&runs.image),
            "{dir}: runs.image `{}`",
            runs.image
        );
    }
    // slim.Dockerfile is the Dockerfile's slim image, its last stage, line for line.
    let root = stages(&std::fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap());
    let slim_text = std::fs::read_to_string(format!("{ROOT}/slim.Dockerfile")).unwrap();
    let slim = stages(&slim_text);
    assert_eq!(
        slim.keys().collect::<Vec<_>>(),
        ["bin", "compile", "rust", "slim"]
    );
    for (name, body) in &slim {
        assert_eq!(
            Some(body),
            root.get(name),
            "stage `{name}` differs from the Dockerfile's"
        );
    }
    let last = slim_text.rsplit("\nFROM ").next().unwrap();
    assert!(
        last.starts_with("scratch AS slim"),
        "the last stage is `slim`"
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

/// The release workflow's pin step, its `sed` and `grep` lines run as written on copies of the
/// action.yml files: the root then names the default image by digest, each sub-action the slim
/// image, and nothing else in the files changes.
#[test]
fn the_release_pins_each_action_to_its_image() {
    let text = std::fs::read_to_string(format!("{ROOT}/.github/workflows/release.yml")).unwrap();
    let workflow: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let step = workflow["jobs"]["release"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Pin the actions"))
        })
        .expect("the release has a pin step");
    let script = step["run"].as_str().unwrap();
    // The lines that edit the files, with the loop around the sub-actions' (up to the commit).
    let edits: String = script
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("sed -i"))
        .take_while(|l| !l.trim_start().starts_with("git commit"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(edits.contains("sed -i"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "action.yml",
        "push/action.yml",
        "pull/action.yml",
        "verify/action.yml",
    ] {
        let to = dir.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(format!("{ROOT}/{file}"), to).unwrap();
    }
    let default = format!("docker://ghcr.io/acme/app@sha256:{}", "a".repeat(64));
    let slim = format!("docker://ghcr.io/acme/app@sha256:{}", "b".repeat(64));
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &edits])
        .current_dir(dir.path())
        .env("IMAGE", &default)
        .env("SLIM", &slim)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{edits}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |dir: &std::path::Path, file: &str| -> Action {
        serde_norway::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
    };
    let root = read(dir.path(), "action.yml");
    assert_eq!(root.runs.image, default);
    for sub in ["push", "pull", "verify"] {
        let file = format!("{sub}/action.yml");
        let pinned = read(dir.path(), &file);
        assert_eq!(pinned.runs.image, slim, "{file}");
        assert!(pinned_image(&pinned.runs.image));
        let source = action_in(sub);
        assert_eq!(
            (pinned.inputs.keys().collect::<Vec<_>>(), pinned.runs.env),
            (source.inputs.keys().collect::<Vec<_>>(), source.runs.env),
            "{file}: only the image changes"
        );
    }
}
