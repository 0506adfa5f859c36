//! The workflows this repository runs and the ones its examples and README give users must parse,
//! and name only what exists: every `with:` key of a step that uses this action is an action.yml
//! input (and the required ones are there), every `outputs.<name>` read from such a step, or from
//! a job that passes it on, is declared, and every other action is pinned to a commit SHA with its
//! version in a comment. The ecosystem's linters agree: zizmor finds nothing at medium or above,
//! and check-jsonschema's GitHub schemas accept the workflows, action.yml and dependabot.yml.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What an action.yml declares.
struct Contract {
    inputs: BTreeSet<String>,
    required: BTreeSet<String>,
    outputs: BTreeSet<String>,
}

/// What each action of this repository declares, by folder: `""` the root's, and the
/// sub-actions'.
struct Contracts(BTreeMap<String, Contract>);

fn contract() -> Contracts {
    Contracts(
        ["", "push", "pull", "verify"]
            .into_iter()
            .map(|dir| (dir.to_owned(), contract_in(dir)))
            .collect(),
    )
}

fn contract_in(dir: &str) -> Contract {
    let path = Path::new(ROOT).join(dir).join("action.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let action: Value = serde_norway::from_str(&text).unwrap();
    let required = action["inputs"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["required"].as_bool() == Some(true))
        .map(|(k, _)| k.as_str().unwrap().to_owned())
        .collect();
    Contract {
        inputs: keys(&action["inputs"]),
        required,
        outputs: keys(&action["outputs"]),
    }
}

/// This action or one of its sub-actions, from the checkout (`./`, `./verify`) or from GitHub
/// by any owner and ref (`OWNER/wasm-oci-action/verify@v1`): its folder, `""` for the root.
fn this_action(uses: &str) -> Option<String> {
    let folder = |dir: &str| Some(dir.trim_end_matches('/').to_owned());
    if let Some(dir) = uses.strip_prefix("./") {
        return folder(dir);
    }
    if uses == "." {
        return folder("");
    }
    let (path, _) = uses.split_once('@')?;
    let (_, rest) = path.split_once("/wasm-oci-action")?;
    if rest.is_empty() {
        folder("")
    } else {
        folder(rest.strip_prefix('/')?)
    }
}

/// Every `{prefix}.<id>.outputs.<name>` in `text`, as `(id, name)`.
fn output_refs(text: &str, prefix: &str) -> Vec<(String, String)> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    };
    let needle = format!("{prefix}.");
    let mut refs = Vec::new();
    for (at, _) in text.match_indices(&needle) {
        // Not the tail of a longer name (`foosteps.`).
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        let rest = &text[at + needle.len()..];
        let id = ident(rest);
        if let Some(after) = rest[id.len()..].strip_prefix(".outputs.") {
            refs.push((id, ident(after)));
        }
    }
    refs
}

/// All the strings in a YAML value, keys included.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Mapping(map) => map.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        Value::Tagged(tagged) => strings(&tagged.value, out),
        _ => {}
    }
}

/// The string keys of a mapping; none when `value` is not one.
fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The problems in one workflow file; empty when it is right.
fn check(text: &str, contracts: &Contracts) -> Vec<String> {
    let workflow: Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    let Some(jobs) = workflow["jobs"].as_mapping() else {
        return vec!["has no `jobs:` mapping".to_owned()];
    };
    let mut problems = Vec::new();
    // Job outputs, to check `needs.<job>.outputs.<name>` against.
    let job_outputs: BTreeMap<String, BTreeSet<String>> = jobs
        .iter()
        .map(|(name, job)| {
            (
                name.as_str().unwrap_or_default().to_owned(),
                keys(&job["outputs"]),
            )
        })
        .collect();

    for (job_name, job) in jobs {
        let job_name = job_name.as_str().unwrap_or_default();
        // Service and job containers run what their tag names today: pinned by digest too.
        let services = job["services"].as_mapping().cloned().unwrap_or_default();
        let containers = services
            .iter()
            .map(|(name, service)| {
                (
                    format!("service `{}`", name.as_str().unwrap_or("")),
                    service,
                )
            })
            .chain(std::iter::once(("container".to_owned(), &job["container"])));
        for (what, container) in containers {
            let image = container["image"].as_str().or(container.as_str());
            if let Some(image) = image.filter(|i| !i.contains("@sha256:")) {
                problems.push(format!(
                    "job `{job_name}` {what}: `{image}` is not pinned by digest"
                ));
            }
        }
        let steps = job["steps"].as_sequence().cloned().unwrap_or_default();
        // The steps of this action, by id: the folder of the action.yml they run.
        let mut ours = BTreeMap::new();
        for (index, step) in steps.iter().enumerate() {
            let Some(uses) = step["uses"].as_str() else {
                continue;
            };
            let at = format!("job `{job_name}` step {}", index + 1);
            if let Some(dir) = this_action(uses) {
                let Some(contract) = contracts.0.get(&dir) else {
                    if !uses.starts_with("./") || dir.is_empty() {
                        problems.push(format!("{at}: `{uses}` is no action of this repository"));
                    }
                    continue;
                };
                if let Some(id) = step["id"].as_str() {
                    ours.insert(id.to_owned(), dir.clone());
                }
                let with = keys(&step["with"]);
                for key in with.difference(&contract.inputs) {
                    problems.push(format!(
                        "{at}: `{key}` is not an input of {}action.yml",
                        folder_prefix(&dir)
                    ));
                }
                for key in contract.required.difference(&with) {
                    problems.push(format!("{at}: required input `{key}` is missing"));
                }
            } else if let Some(image) = uses.strip_prefix("docker://") {
                if !image.contains("@sha256:") {
                    problems.push(format!("{at}: `{uses}` is not pinned by digest"));
                }
            } else if !uses.starts_with("./") {
                let sha = uses.split_once('@').map(|(_, r)| r).unwrap_or_default();
                if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    problems.push(format!("{at}: `{uses}` is not pinned to a commit SHA"));
                }
                // Comments are not in the parsed YAML: find the line.
                let commented = text.lines().any(|line| {
                    line.contains(&format!("uses: {uses}"))
                        && line
                            .split_once(" # ")
                            .is_some_and(|(_, c)| c.trim_start().starts_with('v'))
                });
                if !commented {
                    problems.push(format!("{at}: `{uses}` has no `# vX` version comment"));
                }
            }
        }

        let mut texts = Vec::new();
        strings(job, &mut texts);
        let needs: BTreeSet<String> = match &job["needs"] {
            Value::String(s) => [s.clone()].into(),
            Value::Sequence(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => BTreeSet::new(),
        };
        for text in &texts {
            for (id, name) in output_refs(text, "steps") {
                if let Some(dir) = ours.get(&id)
                    && !contracts.0[dir].outputs.contains(&name)
                {
                    problems.push(format!(
                        "job `{job_name}`: `steps.{id}.outputs.{name}` is not an output of {}action.yml",
                        folder_prefix(dir)
                    ));
                }
            }
            for (other, name) in output_refs(text, "needs") {
                if !needs.contains(&other) {
                    problems.push(format!(
                        "job `{job_name}`: reads `needs.{other}` without `needs: {other}`"
                    ));
                } else if !job_outputs.get(&other).is_some_and(|o| o.contains(&name)) {
                    problems.push(format!(
                        "job `{job_name}`: job `{other}` has no output `{name}`"
                    ));
                }
            }
        }
    }
    problems
}

/// `verify/` for a sub-action's folder, nothing for the root.
fn folder_prefix(dir: &str) -> String {
    if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    }
}

fn workflow_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(ROOT).join(".github/workflows"), &mut files);
    walk(&Path::new(ROOT).join("examples"), &mut files);
    files.sort();
    files
}

#[test]
fn every_workflow_parses_and_names_only_what_exists() {
    let contract = contract();
    let files = workflow_files();
    for expected in [
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        "examples/workflows/release.yml",
    ] {
        assert!(
            files.contains(&Path::new(ROOT).join(expected)),
            "{expected} is missing"
        );
    }
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for problem in check(&text, &contract) {
            problems.push(format!("{}: {problem}", file.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A workflow file without its opening comment: what the README shows of it.
fn without_header(text: &str) -> &str {
    let mut rest = text;
    while rest.starts_with('#') {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    rest.trim_start_matches('\n')
}

/// The README's complete workflows (its `yaml` blocks with a `jobs:` key), which users copy: each
/// is one of the example files, shown whole, so the two cannot drift; the files are checked above.
#[test]
fn every_readme_workflow_is_an_example_file() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let workflows: Vec<&str> = readme
        .split("```yaml\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap())
        .filter(|block| block.lines().any(|l| l == "jobs:"))
        .collect();
    assert!(!workflows.is_empty(), "the quick start is a workflow");
    let examples: Vec<(PathBuf, String)> = workflow_files()
        .into_iter()
        .filter(|f| f.starts_with(Path::new(ROOT).join("examples/workflows")))
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect();
    let contract = contract();
    for workflow in workflows {
        assert!(
            examples
                .iter()
                .any(|(_, text)| without_header(text) == workflow),
            "this README workflow is not the body of any file in examples/workflows/ \
             (copy the file's text after its opening comment):\n{workflow}"
        );
        let problems = check(workflow, &contract);
        assert!(problems.is_empty(), "{}\n{workflow}", problems.join("\n"));
    }
}

#[test]
fn the_checker_finds_what_is_wrong() {
    let bad = r#"
on: push
jobs:
  release:
    runs-on: ubuntu-latest
    outputs:
      digest: ${{ steps.push.outputs.digets }}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683
      - id: push
        uses: acme/wasm-oci-action@v1
        with:
          tag: latest
  deploy:
    runs-on: ubuntu-latest
    services:
      registry:
        image: registry:2
    steps:
      - uses: docker://ghcr.io/acme/tool:1
      - run: echo ${{ needs.release.outputs.digest }} ${{ needs.build.outputs.x }}
      - id: verify
        uses: acme/wasm-oci-action/verify@v1
        with:
          image: ghcr.io/acme/app@sha256:0
          path: app.wasm
      - run: echo ${{ steps.verify.outputs.wasm-digest }}
      - uses: ./pull
        with:
          image: ghcr.io/acme/app@sha256:0
          output: app.wasm
      - uses: acme/wasm-oci-action/build@v1
"#;
    let problems = check(bad, &contract());
    let expected = [
        "job `release` step 1: `actions/checkout@v4` is not pinned to a commit SHA",
        "job `release` step 1: `actions/checkout@v4` has no `# vX` version comment",
        "job `release` step 2: `actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683` has no `# vX` version comment",
        "job `release` step 3: `tag` is not an input of action.yml",
        "job `release` step 3: required input `image` is missing",
        "job `release`: `steps.push.outputs.digets` is not an output of action.yml",
        "job `deploy` service `registry`: `registry:2` is not pinned by digest",
        "job `deploy` step 1: `docker://ghcr.io/acme/tool:1` is not pinned by digest",
        "job `deploy` step 3: `path` is not an input of verify/action.yml",
        "job `deploy` step 6: `acme/wasm-oci-action/build@v1` is no action of this repository",
        "job `deploy`: reads `needs.release` without `needs: release`",
        "job `deploy`: reads `needs.build` without `needs: build`",
        "job `deploy`: `steps.verify.outputs.wasm-digest` is not an output of verify/action.yml",
    ];
    assert_eq!(problems, expected);
    assert_eq!(
        check("jobs: [", &contract()).len(),
        1,
        "a file that does not parse is a problem"
    );
}

#[test]
fn output_refs_read_expressions() {
    assert_eq!(
        output_refs(
            "${{ steps.push.outputs.wasm-digest }} mysteps.x.outputs.y steps.a.b",
            "steps"
        ),
        [("push".to_owned(), "wasm-digest".to_owned())]
    );
}

/// The ecosystem's own linters, as CI runs them (`.ci/run` installs both from PyPI): zizmor's
/// security audits, offline and with inline ignores disregarded, so a finding is fixed rather
/// than suppressed; and check-jsonschema with its bundled GitHub schemas. A missing tool fails.
fn run_linter(tool: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(tool)
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}): `bash .ci/run --install-only` installs it")
        })
}

/// zizmor's `unpinned-images` reads a docker action's `runs.image` as an image reference unless
/// it is exactly `Dockerfile`; the runner builds any path ending in `Dockerfile`, relative to the
/// action.yml, with that file's folder as the context (actions/runner, ContainerActionHandler).
/// A sub-action's `../slim.Dockerfile` is such a file, built from this repository's source at
/// that ref (a release commit names the published image by digest instead, which zizmor
/// accepts), so this finding there names no image at all.
fn a_sub_actions_dockerfile(ident: &str, file: &str) -> bool {
    let Some(dir) = file.strip_suffix("/action.yml") else {
        return false;
    };
    let action: Value =
        serde_norway::from_str(&std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap())
            .unwrap();
    ident == "unpinned-images"
        && ["push", "pull", "verify"].contains(&dir)
        && action["runs"]["image"] == "../slim.Dockerfile"
        && Path::new(ROOT).join("slim.Dockerfile").is_file()
}

/// Low-severity zizmor findings that stay, each with the reason.
const ACCEPTED_LOW: &[(&str, &str)] = &[(
    // ci.yml runs the action from the checkout with `uses: ./`. GitHub's newer `$/` form resolves
    // the same commit without a checkout, but these jobs need the checkout anyway (they build
    // examples/ from the workspace), and `./` also runs on GitHub Enterprise Server and under
    // the linters and tools that do not know `$/` yet.
    "self-repository",
    ".github/workflows/ci.yml",
)];

#[test]
fn zizmor_finds_nothing_at_medium_or_above() {
    let out = run_linter(
        "zizmor",
        &[
            "--offline",
            "--no-ignores",
            "--format",
            "json",
            ".github/workflows",
            "examples/workflows",
            "action.yml",
            "push/action.yml",
            "pull/action.yml",
            "verify/action.yml",
            ".github/dependabot.yml",
        ],
    );
    // Exit codes 10 and up report findings; anything else non-zero is zizmor failing to run.
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code >= 10,
        "zizmor failed ({code}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut problems = Vec::new();
    for finding in &findings {
        let ident = finding["ident"].as_str().unwrap_or_default();
        let severity = finding["determinations"]["severity"]
            .as_str()
            .unwrap_or_default();
        let files: BTreeSet<&str> = finding["locations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["symbolic"]["key"]["Local"]["verbatim_path"].as_str())
            .collect();
        let accepted = (severity == "Low"
            && files
                .iter()
                .all(|file| ACCEPTED_LOW.contains(&(ident, *file))))
            || files
                .iter()
                .all(|file| a_sub_actions_dockerfile(ident, file));
        if !accepted {
            problems.push(format!(
                "{severity} {ident} in {files:?}: {}",
                finding["desc"]
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_workflows_action_and_dependabot_config_match_their_schemas() {
    let mut workflows = workflow_files();
    workflows.retain(|f| {
        f.starts_with(Path::new(ROOT).join(".github/workflows"))
            || f.starts_with(Path::new(ROOT).join("examples/workflows"))
    });
    let workflows: Vec<&str> = workflows.iter().map(|f| f.to_str().unwrap()).collect();
    for (schema, files) in [
        ("vendor.github-workflows", workflows),
        (
            "vendor.github-actions",
            vec![
                "action.yml",
                "push/action.yml",
                "pull/action.yml",
                "verify/action.yml",
            ],
        ),
        ("vendor.dependabot", vec![".github/dependabot.yml"]),
    ] {
        let mut args = vec!["--builtin-schema", schema];
        args.extend(files);
        let out = run_linter("check-jsonschema", &args);
        assert!(
            out.status.success(),
            "check-jsonschema --builtin-schema {schema}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_linters_find_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("bad.yml");
    std::fs::write(
        &workflow,
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n      - run: echo ${{ github.event.head_commit.message }}\n",
    )
    .unwrap();
    let path = workflow.to_str().unwrap();
    let out = run_linter("zizmor", &["--offline", "--format", "json", path]);
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        findings.iter().any(|f| f["ident"] == "template-injection"),
        "{findings:?}"
    );
    std::fs::write(
        &workflow,
        "on: push\njobs:\n  a:\n    runs-on: x\n    stepz: []\n",
    )
    .unwrap();
    let out = run_linter(
        "check-jsonschema",
        &["--builtin-schema", "vendor.github-workflows", path],
    );
    assert!(!out.status.success(), "a misspelled key fails the schema");
}

/// Dependabot moves a pin and its comment only in the files it reads (.github/workflows,
/// action.yml, examples/workflows), and only when the comment is the full version tag. So each
/// action is pinned to one commit everywhere, README included, with a `# vX.Y.Z` comment: a pin
/// Dependabot moved in one file and not yet in another fails here.
#[test]
fn each_action_has_one_pin_everywhere_with_its_full_version() {
    let mut texts: Vec<(PathBuf, String)> = workflow_files()
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect();
    let readme = Path::new(ROOT).join("README.md");
    texts.push((readme.clone(), std::fs::read_to_string(&readme).unwrap()));
    let mut pins: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (file, text) in &texts {
        for line in text.lines() {
            let Some((_, uses)) = line.split_once("uses: ") else {
                continue;
            };
            let (reference, comment) = uses.split_once(" # ").unwrap_or((uses, ""));
            let Some((action, sha)) = reference.trim().split_once('@') else {
                continue;
            };
            if sha.len() != 40 || this_action(reference.trim()).is_some() {
                continue;
            }
            let version = comment.trim();
            let full = version
                .strip_prefix('v')
                .is_some_and(|v| v.split('.').count() == 3 && semver::Version::parse(v).is_ok());
            if !full {
                problems.push(format!(
                    "{}: `{action}@{sha}` has the comment `{version}`, not `# vX.Y.Z`",
                    file.display()
                ));
            }
            pins.entry(action.to_owned())
                .or_default()
                .insert(format!("{sha} # {version}"));
        }
    }
    for (action, versions) in &pins {
        if versions.len() > 1 {
            problems.push(format!("`{action}` is pinned differently: {versions:?}"));
        }
    }
    assert!(pins.contains_key("actions/checkout"), "{pins:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The version policy, held in one place: the CHANGELOG names the first release, Cargo.toml
/// carries its version, and every `uses:` of this action and the slim image in the README and
/// the examples names its major version, which the release workflow moves (it moves no `v0`).
#[test]
fn the_docs_pin_the_major_version_the_first_release_makes() {
    let read = |path: &str| std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap();
    let changelog = read("CHANGELOG.md");
    let first = changelog
        .split_once("the first release, ")
        .and_then(|(_, rest)| rest.split([',', ' ']).next())
        .expect("the CHANGELOG names the first release");
    let major: u64 = first.split('.').next().unwrap().parse().unwrap();
    assert!(
        major >= 1,
        "the first release {first} would get no moving major tag"
    );
    let manifest = read("Cargo.toml");
    assert!(
        manifest.contains(&format!("\nversion = \"{first}\"\n")),
        "Cargo.toml's version is not {first}"
    );
    let mut texts = vec![
        ("README.md".to_owned(), read("README.md")),
        ("CHANGELOG.md".to_owned(), changelog.clone()),
    ];
    for file in workflow_files() {
        if file.starts_with(Path::new(ROOT).join("examples")) {
            texts.push((
                file.display().to_string(),
                std::fs::read_to_string(&file).unwrap(),
            ));
        }
    }
    let mut seen = 0;
    for (name, text) in &texts {
        for needle in [
            "/wasm-oci-action@v",
            "/wasm-oci-action:v",
            "/wasm-oci-action/verify@v",
            "/wasm-oci-action/pull@v",
            "/wasm-oci-action/push@v",
        ] {
            for (at, _) in text.match_indices(needle) {
                let digits: String = text[at + needle.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                assert_eq!(
                    digits.parse::<u64>().ok(),
                    Some(major),
                    "{name} names `{}` but the first release is {first}",
                    &text[at..(at + needle.len() + 8).min(text.len())]
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 5, "the README and examples pin the action");
}
