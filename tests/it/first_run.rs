//! What a release engineer meets on the first run, driven as the runner drives the action: an
//! owner or repository with capitals, a dry run whose layout a later step keeps, and a
//! `docker://` step whose token comes from `env:`.

use crate::common;

use common::github_fake::{Answer, FakeGithub, REPOSITORY};
use common::leaks::assert_no_secrets;
use common::*;
use serde_json::Value;

fn skopeo_raw(reference: &str) -> Vec<u8> {
    let skopeo = which("skopeo").expect("skopeo is installed (`.ci/run` installs it)");
    let out = std::process::Command::new(skopeo)
        .args(["inspect", "--raw", reference])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn an_uppercase_repository_is_pushed_lowercased_with_a_notice() {
    let registry = Registry::start();
    let ws = Workspace::new();
    // `ghcr.io/${{ github.repository }}` of the repository `Org/App`.
    let given = format!("{}/Org/App", registry.host());
    let lowered = format!("{}/org/app", registry.host());
    let run = ws
        .run_action(&ws.multiply_env(&given, &[("tags", "1.2.3,Nightly-B"), ("insecure", "true")]));
    assert!(run.success(), "{run:?}");

    let notices: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::notice") && l.contains("lowercase"))
        .collect();
    // One notice for the name (the unsigned provenance has a notice of its own).
    assert_eq!(
        notices,
        [format!(
            "::notice::image `{given}`: repository names are lowercase, so this is `{lowered}`"
        )],
        "{run:?}"
    );

    let out = ws.outputs();
    assert_eq!(out["image"], lowered);
    assert_eq!(out["ref"], format!("{lowered}@{}", out["digest"]));
    // Tags keep their case.
    assert_eq!(out["tags"], "1.2.3,Nightly-B");
    let mut tags = registry.image_tags("org/app");
    tags.sort();
    assert_eq!(tags, ["1.2.3", "Nightly-B"]);
    let (manifest, _) = registry.manifest("org/app", "1.2.3").unwrap();
    assert_eq!(sha256(&manifest), out["digest"]);

    // The deploy job names it the same way: verify and pull find it.
    let pinned = format!("{given}@{}", out["digest"]);
    for inputs in [
        // Pushed without an OIDC token: unsigned, accepted knowingly.
        vec![
            ("command", "verify"),
            ("image", pinned.as_str()),
            ("require-signature", "false"),
        ],
        vec![
            ("command", "pull"),
            ("image", pinned.as_str()),
            ("output", "app.wasm"),
        ],
    ] {
        let inputs = [&inputs[..], &[("insecure", "true")]].concat();
        let run = ws.run_action(&ws.action_env(&inputs));
        assert!(run.success(), "{inputs:?}: {run:?}");
    }
    assert_eq!(
        std::fs::read(ws.root().join("app.wasm")).unwrap(),
        std::fs::read(multiply_wasm()).unwrap()
    );
}

#[test]
fn a_dry_run_writes_its_layout_into_the_workspace_and_names_it() {
    let ws = Workspace::new();
    let tmp = ws.root().join("runner-tmp");
    std::fs::create_dir(&tmp).unwrap();
    // Nothing listens on this port: a dry run must not try.
    let image = format!("127.0.0.1:{}/acme/dry", free_port());
    let mut env = ws.multiply_env(&image, &[("tags", "v1"), ("dry-run", "true")]);
    env.insert("TMPDIR".into(), tmp.display().to_string());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");

    // The default: `wasm-oci-dry-run` in the workspace, named in the `layout` output as the
    // path upload-artifact takes, relative to the workspace.
    let out = ws.outputs();
    assert_eq!(out["layout"], "wasm-oci-dry-run");
    let layout = ws.root().join("wasm-oci-dry-run");
    let manifest = skopeo_raw(&format!("oci:{}:v1", layout.display()));
    assert_eq!(sha256(&manifest), out["digest"]);
    let metadata: Value = serde_json::from_str(&out["metadata"]).unwrap();
    assert_eq!(metadata["layout"], "wasm-oci-dry-run");
    assert!(
        ws.summary().contains("| Written to | `wasm-oci-dry-run` |"),
        "{}",
        ws.summary()
    );
    // Nothing went to the shared temporary directory.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);

    // A path of the user's choosing.
    let run = ws.run_action(&ws.multiply_env(
        &image,
        &[
            ("tags", "v2"),
            ("dry-run", "true"),
            ("dry-run-layout", "artifacts/pr-7"),
        ],
    ));
    assert!(run.success(), "{run:?}");
    assert_eq!(ws.outputs()["layout"], "artifacts/pr-7");
    let manifest = skopeo_raw(&format!(
        "oci:{}:v2",
        ws.root().join("artifacts/pr-7").display()
    ));
    assert_eq!(sha256(&manifest), ws.outputs()["digest"]);

    // A directory that holds something else is left alone, with an error naming it.
    ws.write("notes/readme.txt", b"mine");
    let run = ws.run_action(&ws.multiply_env(
        &image,
        &[
            ("tags", "v3"),
            ("dry-run", "true"),
            ("dry-run-layout", "notes"),
        ],
    ));
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].contains("notes"), "{}", errors[0]);
    assert_eq!(
        std::fs::read_dir(ws.root().join("notes")).unwrap().count(),
        1
    );
}

#[test]
fn a_registry_push_names_no_layout() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let image = format!("{}/acme/multiply", registry.host());
    let run = ws.run_action(&ws.multiply_env(&image, &[("tags", "1"), ("insecure", "true")]));
    assert!(run.success(), "{run:?}");
    assert_eq!(ws.outputs()["layout"], "");
    assert!(!ws.root().join("wasm-oci-dry-run").exists());
}

#[test]
fn a_docker_step_takes_the_token_from_its_environment() {
    const TOKEN: &str = "ghs_envTokenForTheTestOnly0123456789";
    let api = FakeGithub::start(Answer::Json(200, REPOSITORY.to_owned()));
    let ws = Workspace::new();
    // A `docker://` step: only the `with:` keys become inputs, none of action.yml's defaults.
    let mut env: std::collections::BTreeMap<String, String> = ws
        .multiply_env("oci:out", &[("tags", "1.0.0")])
        .into_iter()
        .filter(|(k, v)| !k.starts_with("INPUT_") || !v.is_empty())
        .collect();
    assert!(!env.contains_key("INPUT_GITHUB-TOKEN"));
    env.insert("GITHUB_TOKEN".into(), TOKEN.into());
    env.insert("GITHUB_API_URL".into(), api.api_url());
    env.insert("RUNNER_DEBUG".into(), "1".into());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");

    // Masked before anything else is printed, and said where it came from.
    assert!(
        run.stdout.starts_with(&format!("::add-mask::{TOKEN}\n")),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("github-token: the input is empty; using GITHUB_TOKEN from the environment"),
        "{run:?}"
    );
    // Used as `github-token` is: the API is asked with it, and its answer is in the artifact.
    let requests = api.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let auth = requests[0]
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(auth, Some(format!("Bearer {TOKEN}")));
    let metadata: Value = serde_json::from_str(&ws.outputs()["metadata"]).unwrap();
    assert_eq!(
        metadata["annotations"]["org.opencontainers.image.description"],
        "Multiplies two numbers, in Wasm"
    );
    assert_no_secrets(&run, &ws, &[TOKEN]);
}

#[test]
fn the_readme_slim_step_passes_the_token() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut slim_steps = 0;
    for block in readme.split("```yaml\n").skip(1) {
        let block = block.split("```").next().unwrap();
        let Ok(steps) = serde_norway::from_str::<Vec<serde_norway::Value>>(block) else {
            continue;
        };
        for step in steps {
            let uses = step["uses"].as_str().unwrap_or_default();
            if !uses.starts_with("docker://") || !uses.contains("/wasm-oci-action") {
                continue;
            }
            slim_steps += 1;
            let image = step["with"]["image"].as_str().unwrap_or_default();
            if image.starts_with("ghcr.io/") {
                let has_token = step["env"]["GITHUB_TOKEN"].as_str().is_some()
                    || step["with"]["github-token"].as_str().is_some()
                    || step["with"]["password"].as_str().is_some();
                assert!(
                    has_token,
                    "a docker:// step pushing to ghcr.io needs the token: {step:?}"
                );
            }
        }
    }
    assert!(slim_steps > 0, "the README shows the slim image step");
}

/// The README's slim-image step, run as the runner runs a `docker://` step: only the `with:`
/// keys as inputs, the token in `env:`, an owner with capitals, and a dry run whose layout must
/// outlive the container, in the workspace.
#[test]
fn the_slim_image_step_runs_as_the_readme_shows_it() {
    const TOKEN: &str = "ghs_slimTokenForTheTestOnly0123456789";
    let image = common::container::slim_image();
    let api = FakeGithub::start(Answer::Json(200, REPOSITORY.to_owned()));
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("app.wasm")).unwrap();
    let mut env: std::collections::BTreeMap<String, String> = ws
        .container_env(&[
            ("image", "ghcr.io/Acme/Multiply"),
            ("path", "app.wasm"),
            ("dry-run", "true"),
        ])
        .into_iter()
        .filter(|(k, v)| !k.starts_with("INPUT_") || !v.is_empty())
        .collect();
    env.insert("GITHUB_TOKEN".into(), TOKEN.into());
    env.insert("GITHUB_API_URL".into(), api.api_url());
    let run = ws.run_container(image, &env, common::container::Network::Host);
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout.starts_with(&format!("::add-mask::{TOKEN}\n")),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "::notice::image `ghcr.io/Acme/Multiply`: repository names are lowercase, so this is `ghcr.io/acme/multiply`"
        ),
        "{run:?}"
    );

    let out = ws.outputs();
    assert_eq!(out["image"], "ghcr.io/acme/multiply");
    assert_eq!(out["layout"], "wasm-oci-dry-run");
    let layout = ws.root().join("wasm-oci-dry-run");
    let manifest = skopeo_raw(&format!("oci:{}:1.2.3", layout.display()));
    assert_eq!(sha256(&manifest), out["digest"]);
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.description"],
        "Multiplies two numbers, in Wasm",
        "the API was asked with the token from the environment"
    );
    let auth: Vec<String> = api
        .requests()
        .iter()
        .flat_map(|r| r.headers.clone())
        .filter(|(k, _)| k == "authorization")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(auth, [format!("Bearer {TOKEN}")]);
    assert_no_secrets(&run, &ws, &[TOKEN]);
}

/// The README's command for a fresh clone, on a clean copy of the repository (the files a clone
/// has): it installs only the `wasm32-wasip1` target, not `.ci/run`'s tools, and writes the
/// example into the OCI layout `oci:out`. Its own cargo target directory under `target/`
/// (`cargo test` holds the lock on the default one), kept between runs; CI runs the same
/// command on its fresh checkout (`first-run` in ci.yml).
#[test]
fn the_readme_first_run_command_pushes_the_example_on_a_clean_clone() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let command = readme
        .split("On a fresh clone")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|block| block.lines().next())
        .expect("the README shows the fresh-clone command");
    assert!(!command.contains(".ci/run"), "{command}");
    let installs: Vec<&str> = command
        .split("&&")
        .map(str::trim)
        .filter(|step| step.starts_with("rustup") || step.contains("install"))
        .collect();
    assert_eq!(installs, ["rustup target add wasm32-wasip1"], "{command}");

    // CI runs the same command on its checkout.
    let ci: Value = serde_norway::from_str(
        &std::fs::read_to_string(root.join(".github/workflows/ci.yml")).unwrap(),
    )
    .unwrap();
    let runs: Vec<&str> = ci["jobs"]["first-run"]["steps"]
        .as_array()
        .expect("ci.yml has a first-run job")
        .iter()
        .filter_map(|step| step["run"].as_str())
        .map(str::trim)
        .collect();
    assert!(
        runs.contains(&command),
        "ci.yml's first-run job runs `{command}`: {runs:?}"
    );

    // The clean clone: what git tracks, and new files not ignored (a clone of this tree once
    // committed); no target/, no out/.
    let clone = tempfile::tempdir().unwrap();
    let listed = std::process::Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output()
        .expect("git runs");
    assert!(listed.status.success());
    for file in listed.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let file = std::str::from_utf8(file).unwrap();
        let (from, to) = (root.join(file), clone.path().join(file));
        if from.is_file() {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-c", command]).current_dir(clone.path());
    // The environment a developer's shell has: not what `cargo test` sets for its tests.
    for (name, _) in std::env::vars() {
        if name.starts_with("CARGO_") && name != "CARGO_HOME" {
            cmd.env_remove(name);
        }
    }
    let out = cmd
        .env("CARGO_TARGET_DIR", root.join("target/first-run"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{command}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let layout = clone.path().join("out");
    let manifest = skopeo_raw(&format!("oci:{}:0.1.0", layout.display()));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        sha256(&manifest),
        "the digest on stdout"
    );
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "multiply.wasm"
    );
}
