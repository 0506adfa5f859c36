//! Build mode end to end: the real binary runs cargo on a fresh checkout in the workspace, takes
//! the .wasm cargo reports, and pushes it; compiler errors become annotations on the source line.

use crate::common;

use common::*;
use serde_json::Value;

/// The runner's env for the action plus the host toolchain.
fn build_env(
    ws: &Workspace,
    inputs: &[(&str, &str)],
) -> std::collections::BTreeMap<String, String> {
    let mut env = ws.action_env(inputs);
    env.extend(toolchain_env());
    env
}

fn write(ws: &Workspace, files: &[(&str, &str)]) {
    for (path, text) in files {
        ws.write(path, text.as_bytes());
    }
}

#[test]
fn builds_multiply_for_wasip1_from_source_and_pushes_it() {
    let registry = Registry::start();
    let ws = Workspace::new();
    copy_tree(&example_dir("multiply"), &ws.root().join("multiply"));
    let image = format!("{}/acme/multiply", registry.host());
    let run = ws.run_action(&build_env(
        &ws,
        &[
            ("image", &image),
            ("working-directory", "multiply"),
            ("insecure", "true"),
            ("tags", "1.2.3"),
        ],
    ));
    assert!(run.success(), "{run:?}");
    assert!(run.error_lines().is_empty(), "{run:?}");
    assert!(run.stdout.contains("::group::Build"), "{run:?}");

    // The layer is exactly the file cargo built, and the registry serves it.
    let built = ws
        .root()
        .join("multiply/target/wasm32-wasip1/release/multiply.wasm");
    let wasm = std::fs::read(&built).expect("cargo built multiply.wasm");
    let out = ws.outputs();
    assert_eq!(out["wasm-digest"], sha256(&wasm));
    assert_eq!(registry.blob("acme/multiply", &sha256(&wasm)), wasm);
    let (manifest, _) = registry.manifest("acme/multiply", "1.2.3").unwrap();
    assert_eq!(sha256(&manifest), out["digest"]);

    // What was built is recorded in the metadata output.
    let metadata: Value = serde_json::from_str(&out["metadata"]).unwrap();
    let build = &metadata["build"];
    assert_eq!(build["package"], "multiply");
    assert_eq!(build["target"], "wasm32-wasip1");
    assert_eq!(build["profile"], "release");
    let lock = std::fs::read(ws.root().join("multiply/Cargo.lock")).unwrap();
    assert_eq!(build["cargo-lock-digest"], sha256(&lock));
    let toolchain = build["toolchain"].as_str().unwrap();
    assert!(
        toolchain.contains("release: ") && toolchain.contains("commit-hash: "),
        "{toolchain}"
    );
    assert_eq!(metadata["os"], "wasip1");
    assert!(
        ws.summary()
            .contains("| Built | `multiply` for `wasm32-wasip1`"),
        "{}",
        ws.summary()
    );
}

#[test]
fn builds_a_component_for_wasip2() {
    let ws = Workspace::new();
    copy_tree(&example_dir("hello-component"), &ws.root());
    let run = ws.run_action(&build_env(
        &ws,
        &[
            ("image", "oci:out"),
            ("target", "wasm32-wasip2"),
            ("tags", "0.1.0"),
        ],
    ));
    assert!(run.success(), "{run:?}");
    let out = ws.outputs();
    let metadata: Value = serde_json::from_str(&out["metadata"]).unwrap();
    assert_eq!(metadata["kind"], "component");
    assert_eq!(metadata["os"], "wasip2");
    assert_eq!(metadata["build"]["target"], "wasm32-wasip2");
    assert_eq!(metadata["build"]["package"], "hello-component");
    let exports = metadata["component"]["exports"].to_string();
    assert!(exports.contains("wasi:cli/run"), "{exports}");
    let built = std::fs::read(
        ws.root()
            .join("target/wasm32-wasip2/release/hello-component.wasm"),
    )
    .unwrap();
    assert_eq!(out["wasm-digest"], sha256(&built));
}

#[test]
fn a_compile_error_is_annotated_on_its_line() {
    let ws = Workspace::new();
    write(
        &ws,
        &[
            (
                "crates/broken/Cargo.toml",
                "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[lib]\ncrate-type = [\"cdylib\"]\n[workspace]\n",
            ),
            (
                "crates/broken/src/lib.rs",
                "//! Does not compile.\n\npub fn answer() -> u32 {\n    \"forty-two\"\n}\n",
            ),
        ],
    );
    let run = ws.run_action(&build_env(
        &ws,
        &[("image", "oci:out"), ("working-directory", "crates/broken")],
    ));
    assert!(!run.success(), "{run:?}");
    let annotation = run
        .error_lines()
        .into_iter()
        .find(|l| l.contains("file="))
        .unwrap_or_else(|| panic!("no located annotation: {run:?}"));
    assert!(
        annotation.starts_with("::error file=crates/broken/src/lib.rs,line=4,col=5,"),
        "{annotation}"
    );
    assert!(
        annotation.contains("title=error[E0308]%3A mismatched types"),
        "{annotation}"
    );
    // The step fails with a one-line summary last.
    let last = run.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("::error title=Build failed::cargo could not build `broken` for wasm32-wasip1: 1 compiler error"),
        "{last}"
    );
    assert!(ws.outputs().is_empty());
    assert!(!ws.root().join("out").exists(), "nothing half-done");
}

const MEMBER: &str = "[package]\nname = \"NAME\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[lib]\ncrate-type = [\"cdylib\"]\n";

#[test]
fn a_workspace_of_two_wasm_crates_needs_package() {
    let ws = Workspace::new();
    write(
        &ws,
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"alpha\", \"beta\"]\nresolver = \"2\"\n",
            ),
            ("alpha/Cargo.toml", &MEMBER.replace("NAME", "alpha")),
            (
                "alpha/src/lib.rs",
                "#[unsafe(no_mangle)]\npub extern \"C\" fn alpha() -> i32 { 1 }\n",
            ),
            ("beta/Cargo.toml", &MEMBER.replace("NAME", "beta")),
            (
                "beta/src/lib.rs",
                "#[unsafe(no_mangle)]\npub extern \"C\" fn beta() -> i32 { 2 }\n",
            ),
        ],
    );
    let run = ws.run_action(&build_env(&ws, &[("image", "oci:out")]));
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].contains("`alpha`") && errors[0].contains("`beta`"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains("choose one with `package`"),
        "{}",
        errors[0]
    );

    // Naming one builds that one only.
    let run = ws.run_action(&build_env(
        &ws,
        &[("image", "oci:out"), ("package", "beta")],
    ));
    assert!(run.success(), "{run:?}");
    let metadata: Value = serde_json::from_str(&ws.outputs()["metadata"]).unwrap();
    assert_eq!(metadata["build"]["package"], "beta");
    let beta = std::fs::read(ws.root().join("target/wasm32-wasip1/release/beta.wasm")).unwrap();
    assert_eq!(ws.outputs()["wasm-digest"], sha256(&beta));
    assert!(
        !ws.root()
            .join("target/wasm32-wasip1/release/alpha.wasm")
            .exists()
    );
}

#[test]
fn a_missing_target_says_which_rustup_command_to_run() {
    // A real Wasm target that .ci/run does not add.
    let target = "wasm32-wasip1-threads";
    let ws = Workspace::new();
    copy_tree(&example_dir("multiply"), &ws.root());
    let run = ws.run_action(&build_env(&ws, &[("image", "oci:out"), ("target", target)]));
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(
        errors,
        [format!(
            "::error title=Rust target missing::the Rust target `{target}` is not installed; run `rustup target add {target}`"
        )],
        "{run:?}"
    );
}

/// A bad `WASM_OCI_*` setting or `ca-file` fails before cargo runs: no build is spent on a
/// typo, and nothing is built.
#[test]
fn a_bad_setting_or_ca_file_fails_before_the_build() {
    for (case, inputs, setting, expect) in [
        (
            "retry bound",
            &[][..],
            Some(("WASM_OCI_RETRY_MAX_ATTEMPTS", "0")),
            "input `WASM_OCI_RETRY_MAX_ATTEMPTS`",
        ),
        (
            "ca-file without a certificate",
            &[("ca-file", "Cargo.toml")][..],
            None,
            "holds no PEM certificate",
        ),
    ] {
        let ws = Workspace::new();
        copy_tree(&example_dir("multiply"), &ws.root());
        let mut all = vec![("image", "localhost:1/acme/app"), ("tags", "1.0.0")];
        all.extend_from_slice(inputs);
        let mut env = build_env(&ws, &all);
        if let Some((name, value)) = setting {
            env.insert(name.into(), value.into());
        }
        let started = std::time::Instant::now();
        let run = ws.run_action(&env);
        assert!(!run.success(), "{case}: {run:?}");
        let errors = run.error_lines();
        assert_eq!(errors.len(), 1, "{case}: {run:?}");
        assert!(errors[0].contains(expect), "{case}: {run:?}");
        assert!(!run.stdout.contains("::group::Build"), "{case}: {run:?}");
        assert!(!ws.root().join("target").exists(), "{case}: cargo ran");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{case}: took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn cli_builds_in_a_crate_directory_without_a_path() {
    let ws = Workspace::new();
    copy_tree(&example_dir("multiply"), &ws.root());
    let env: Vec<(String, String)> = toolchain_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = ws.run_cli(&["push", "--image", "oci:out", "--tags", "0.1.0"], &env);
    assert!(run.success(), "{run:?}");
    let digest = run.stdout.trim();
    assert!(digest.starts_with("sha256:"), "{run:?}");
    let layout: Value =
        serde_json::from_slice(&std::fs::read(ws.root().join("out/index.json")).unwrap()).unwrap();
    assert_eq!(layout["manifests"][0]["digest"], digest);
}

#[test]
fn build_scripts_never_see_the_registry_password() {
    let ws = Workspace::new();
    write(
        &ws,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"nosy\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[lib]\ncrate-type = [\"cdylib\"]\n[workspace]\n",
            ),
            (
                "build.rs",
                "fn main() {\n    for (k, v) in std::env::vars() {\n        if v.contains(\"s3cr3t-pw\") { panic!(\"build script saw {k}\"); }\n    }\n}\n",
            ),
            (
                "src/lib.rs",
                "#[unsafe(no_mangle)]\npub extern \"C\" fn one() -> i32 { 1 }\n",
            ),
        ],
    );
    let mut env = build_env(
        &ws,
        &[
            ("image", "oci:out"),
            ("username", "bot"),
            ("password", "s3cr3t-pw"),
        ],
    );
    env.insert("WASM_OCI_PASSWORD".into(), "s3cr3t-pw".into());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    let leaked = run
        .all()
        .lines()
        .any(|l| l.contains("s3cr3t-pw") && !l.starts_with("::add-mask::"));
    assert!(!leaked, "{run:?}");
}

/// What the runner puts in a job's environment that a build must never see, with values.
const RUNNER_CREDENTIALS: &[(&str, &str)] = &[
    ("GITHUB_TOKEN", "ghs_envtoken-4567"),
    ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "oidc-request-token-89"),
    (
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "https://token.example/mint?a=1",
    ),
    ("ACTIONS_RUNTIME_TOKEN", "runtime-token-1011"),
    ("ACTIONS_RUNTIME_URL", "https://runtime.example/"),
    ("ACTIONS_CACHE_URL", "https://cache.example/"),
    ("ACTIONS_RESULTS_URL", "https://results.example/"),
    ("DOCKER_CONFIG", "/nonexistent/docker-config"),
    ("WASM_OCI_PASSWORD", "cli-flag-pw-1213"),
];

#[test]
fn build_scripts_and_proc_macros_see_no_credentials() {
    let ws = Workspace::new();
    let record = "fn record_env(file: &str) {\n    let dir = std::env::var(\"CARGO_MANIFEST_DIR\").unwrap();\n    let all: String = std::env::vars().map(|(k, v)| format!(\"{k}={v}\\n\")).collect();\n    std::fs::write(std::path::Path::new(&dir).join(file), all).unwrap();\n}\n";
    write(
        &ws,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"nosy\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[lib]\ncrate-type = [\"cdylib\"]\n[dependencies]\nnosy-macro = { path = \"macro\" }\n[workspace]\n",
            ),
            (
                "build.rs",
                &format!("{record}fn main() {{\n    record_env(\"build-script.env\");\n}}\n"),
            ),
            (
                "src/lib.rs",
                "nosy_macro::record!();\n#[unsafe(no_mangle)]\npub extern \"C\" fn one() -> i32 { 1 }\n",
            ),
            (
                "macro/Cargo.toml",
                "[package]\nname = \"nosy-macro\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[lib]\nproc-macro = true\n",
            ),
            (
                "macro/src/lib.rs",
                &format!(
                    "extern crate proc_macro;\n{record}#[proc_macro]\npub fn record(_: proc_macro::TokenStream) -> proc_macro::TokenStream {{\n    record_env(\"proc-macro.env\");\n    proc_macro::TokenStream::new()\n}}\n"
                ),
            ),
        ],
    );
    let mut env = build_env(
        &ws,
        &[
            ("image", "oci:out"),
            ("sign", "false"),
            ("username", "bot"),
            ("password", "s3cr3t-pw-1234"),
            ("github-token", "ghs_inputtoken-1415"),
        ],
    );
    for (k, v) in RUNNER_CREDENTIALS {
        env.insert(k.to_string(), v.to_string());
    }
    // A workflow's own `env:`: one setting, and a copy of the password under another name.
    env.insert("MY_SETTING".into(), "kept".into());
    env.insert("DEPLOY_PASSWORD".into(), "s3cr3t-pw-1234".into());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");

    for file in ["build-script.env", "proc-macro.env"] {
        let seen = std::fs::read_to_string(ws.root().join(file))
            .unwrap_or_else(|e| panic!("{file} was not recorded: {e}; {run:?}"));
        let names: Vec<&str> = seen.lines().filter_map(|l| l.split('=').next()).collect();
        for (name, value) in RUNNER_CREDENTIALS {
            assert!(!names.contains(name), "{file}: the build saw {name}");
            assert!(
                !seen.contains(value),
                "{file}: the build saw {name}'s value"
            );
        }
        for name in &names {
            assert!(
                !name.starts_with("INPUT_") && !name.starts_with("WASM_OCI_"),
                "{file}: the build saw {name}"
            );
        }
        for secret in ["s3cr3t-pw-1234", "ghs_inputtoken-1415"] {
            assert!(!seen.contains(secret), "{file}: the build saw a secret");
        }
        assert!(
            seen.lines().any(|l| l == "MY_SETTING=kept"),
            "{file}: {seen}"
        );
    }
}
