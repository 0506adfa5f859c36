//! A table of bad inputs: inputs, files, references, credentials and registry answers. Each
//! must give a non-zero exit, exactly one `::error title=...::` line naming the problem, and
//! leave the registry as it was (no tag, no upload). Every run is at trace level and grepped
//! for the secrets it was given.

use crate::common;

use std::collections::BTreeMap;

use common::leaks::{assert_no_secrets, loud};
use common::proxy::{Fault, FaultProxy};
use common::*;

const REPO: &str = "acme/bad";
const USER: &str = "bot";
const PASSWORD: &str = "good-password-42";

/// Where a case pushes.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// The plain registry, over HTTP.
    Plain,
    /// The htpasswd registry, over HTTP.
    Protected,
    /// The plain registry behind a proxy that answers every blob upload start with `answer`.
    Answering(u16, &'static str),
    /// A port nothing listens on.
    Nobody,
    /// The plain registry, but over HTTPS (no `insecure`).
    PlainOverHttps,
}

struct Case {
    name: &'static str,
    target: Target,
    inputs: Vec<(&'static str, String)>,
    env: Vec<(&'static str, String)>,
    /// Files to write into the workspace before the run.
    setup: fn(&Workspace),
    /// What the one error line must contain.
    expect: &'static str,
    /// Secrets given in this case.
    secrets: Vec<&'static str>,
}

fn case(name: &'static str, expect: &'static str) -> Case {
    Case {
        name,
        target: Target::Plain,
        inputs: Vec::new(),
        env: Vec::new(),
        setup: |_| {},
        expect,
        secrets: Vec::new(),
    }
}

impl Case {
    fn input(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.inputs.push((name, value.into()));
        self
    }
    fn env(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.env.push((name, value.into()));
        self
    }
    fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }
    fn setup(mut self, setup: fn(&Workspace)) -> Self {
        self.setup = setup;
        self
    }
    fn secret(mut self, secret: &'static str) -> Self {
        self.secrets.push(secret);
        self
    }
}

fn docker_config(ws: &Workspace, json: &str) {
    let dir = ws.dir.path().join("home/.docker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), json).unwrap();
}

fn broken_helper(ws: &Workspace) {
    use std::os::unix::fs::PermissionsExt;
    let bin = ws.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("docker-credential-broken");
    std::fs::write(&path, "#!/bin/sh\necho 'keyring is locked' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    docker_config(ws, r#"{"credHelpers":{"HOST":"broken"}}"#);
}

fn cases() -> Vec<Case> {
    let denied =
        r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
    let name_invalid =
        r#"{"errors":[{"code":"NAME_INVALID","message":"invalid repository name"}]}"#;
    let unsupported =
        r#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#;
    vec![
        // Files.
        case("missing file", "no file at `nope.wasm`").input("path", "nope.wasm"),
        case("not wasm", "text.wasm` is not valid WebAssembly")
            .input("path", "text.wasm")
            .setup(|ws| {
                ws.write("text.wasm", b"hello, world\n");
            }),
        case("truncated module", "is not valid WebAssembly")
            .input("path", "cut.wasm")
            .setup(|ws| {
                let wasm = std::fs::read(multiply_wasm()).unwrap();
                ws.write("cut.wasm", &wasm[..wasm.len() / 2]);
            }),
        case("empty file", "the file is empty")
            .input("path", "empty.wasm")
            .setup(|ws| {
                ws.write("empty.wasm", b"");
            }),
        case("glob without match", "no file matches `dist/*.wasm`").input("path", "dist/*.wasm"),
        case("glob with two matches", "matches 2 files")
            .input("path", "two/*.wasm")
            .setup(|ws| {
                let wasm = std::fs::read(multiply_wasm()).unwrap();
                ws.write("two/a.wasm", &wasm);
                ws.write("two/b.wasm", &wasm);
            }),
        case("path is a directory", "`sub` is a directory")
            .input("path", "sub")
            .setup(|ws| {
                std::fs::create_dir_all(ws.root().join("sub")).unwrap();
            }),
        case("working directory missing", "input `working-directory`")
            .input("working-directory", "no/such/dir"),
        // References.
        case("invalid image reference", "input `image`").input("image", "Bad Name/app"),
        case("image with a scheme", "must not have a scheme")
            .input("image", "https://HOST/acme/bad"),
        case(
            "a layout beside a registry",
            "cannot be combined with other images",
        )
        .input("image", "HOST/acme/bad\noci:out"),
        case("a reference in tags without a tag", "without a tag").input("tags", "HOST/acme/bad"),
        case("image with a digest", "carries a digest")
            .input("image", format!("HOST/acme/bad@sha256:{}", "a".repeat(64))),
        case("image missing", "input `image`").input("image", ""),
        case("invalid tag", "input `tags`").input("tags", "good, bad tag!"),
        case("tag too long", "longer than 128").input("tags", "t".repeat(129)),
        case("tag starting with a dot", "must start with").input("tags", ".hidden"),
        // Other inputs.
        case("insecure not a boolean", "input `insecure`").input("insecure", "yes"),
        case("unknown format", "input `format`").input("format", "docker"),
        case("annotation without value", "input `annotations`").input("annotations", "novalue"),
        case("annotation with empty key", "input `annotations`").input("annotations", "=x"),
        case("unknown command", "input `command`").input("command", "deploy"),
        case("unknown build mode", "input `build`").input("build", "make"),
        case("ca-file missing", "input `ca-file`").input("ca-file", "no-ca.pem"),
        case("ca-file not PEM", "holds no PEM certificate")
            .input("ca-file", "m.wasm")
            .target(Target::PlainOverHttps),
        case("bad SOURCE_DATE_EPOCH", "SOURCE_DATE_EPOCH").env("SOURCE_DATE_EPOCH", "yesterday"),
        case("bad retry bound", "WASM_OCI_RETRY_MAX_ATTEMPTS")
            .env("WASM_OCI_RETRY_MAX_ATTEMPTS", "0"),
        // Credentials.
        case("username without password", "input `password`").input("username", USER),
        case("password without username", "input `username`")
            .input("password", "lonely-password-1")
            .secret("lonely-password-1"),
        case(
            "wrong credentials",
            "refused the credentials for user `bot`",
        )
        .target(Target::Protected)
        .input("username", USER)
        .input("password", "wrong-password-13")
        .secret("wrong-password-13"),
        case(
            "no credentials for a protected registry",
            "requires credentials",
        )
        .target(Target::Protected),
        case("docker config not JSON", "config.json`: not valid JSON")
            .target(Target::Protected)
            .setup(|ws| docker_config(ws, "{\"auths\": {")),
        case("docker config auth not base64", "docker login")
            .target(Target::Protected)
            .setup(|ws| docker_config(ws, r#"{"auths":{"HOST":{"auth":"%%%not-base64"}}}"#)),
        case(
            "credential helper missing",
            "docker-credential-gone` (named by credHelpers",
        )
        .target(Target::Protected)
        .setup(|ws| docker_config(ws, r#"{"credHelpers":{"HOST":"gone"}}"#)),
        case("credential helper failing", "keyring is locked")
            .target(Target::Protected)
            .setup(broken_helper),
        // Registry answers and transport.
        case("no registry listening", "cannot reach registry").target(Target::Nobody),
        case("https to a plain-HTTP registry", "set `insecure: true`")
            .target(Target::PlainOverHttps),
        case(
            "registry denies the push",
            "DENIED: requested access to the resource is denied",
        )
        .target(Target::Answering(403, denied))
        .input("username", USER)
        .input("password", "denied-password-7")
        .secret("denied-password-7"),
        case(
            "registry refuses the name",
            "NAME_INVALID: invalid repository name",
        )
        .target(Target::Answering(400, name_invalid)),
        case("registry does not support the operation", "UNSUPPORTED")
            .target(Target::Answering(405, unsupported)),
        case("registry answers an HTML error page", "HTTP 413: <html>").target(Target::Answering(
            413,
            "<html><body>too large</body></html>",
        )),
    ]
}

struct Registries {
    plain: Registry,
    protected: Registry,
}

/// Runs `c` and returns what is wrong with the outcome, if anything.
#[allow(clippy::print_stderr)]
fn check(c: Case, registries: &Registries) -> Option<String> {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let _proxy;
    let (host, registry) = match c.target {
        Target::Plain | Target::PlainOverHttps => (registries.plain.host(), &registries.plain),
        Target::Protected => (registries.protected.host(), &registries.protected),
        Target::Nobody => (format!("127.0.0.1:{}", free_port()), &registries.plain),
        Target::Answering(status, body) => {
            let proxy = FaultProxy::start(registries.plain.port, move |_, method, path| {
                if method == "POST" && path.contains("/blobs/uploads/") {
                    Fault::Answer(status, body.to_owned())
                } else {
                    Fault::Pass
                }
            });
            let host = proxy.host();
            _proxy = proxy;
            (host, &registries.plain)
        }
    };
    (c.setup)(&ws);
    // Docker configs name the registry as HOST.
    let config = ws.dir.path().join("home/.docker/config.json");
    if let Ok(text) = std::fs::read_to_string(&config) {
        std::fs::write(&config, text.replace("HOST", &host)).unwrap();
    }
    let image = format!("{host}/{REPO}");
    let mut inputs: BTreeMap<&str, String> = [
        ("image", image),
        ("path", "m.wasm".to_owned()),
        ("tags", "bad".to_owned()),
        ("insecure", (c.target != Target::PlainOverHttps).to_string()),
    ]
    .into();
    for (k, v) in &c.inputs {
        inputs.insert(k, v.replace("HOST", &host));
    }
    let pairs: Vec<(&str, &str)> = inputs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut env = loud(ws.action_env(&pairs));
    env.insert("WASM_OCI_RETRY_MAX_ELAPSED".into(), "1".into());
    env.insert("WASM_OCI_RETRY_INITIAL_DELAY".into(), "0.1".into());
    env.insert(
        "PATH".into(),
        format!(
            "{}:{}",
            ws.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap()
        ),
    );
    for (k, v) in &c.env {
        env.insert(k.to_string(), v.clone());
    }
    let uploads_before = registry.upload_count();
    let run = ws.run_action(&env);

    let mut problems = Vec::new();
    if run.success() {
        problems.push("exited 0".to_owned());
    }
    let errors = run.error_lines();
    if errors.len() != 1 {
        problems.push(format!("{} ::error lines: {errors:?}", errors.len()));
    } else {
        let line = errors[0];
        if !line.starts_with("::error title=") {
            problems.push(format!("no title: {line}"));
        }
        if !line.contains(c.expect) {
            problems.push(format!("`{}` not in: {line}", c.expect));
        }
        if line.contains("%0A") {
            problems.push(format!("more than one line: {line}"));
        }
    }
    if !registry.tags(REPO).is_empty() {
        problems.push(format!("tags appeared: {:?}", registry.tags(REPO)));
    }
    if registry.upload_count() != uploads_before {
        problems.push("a blob upload reached the registry".to_owned());
    }
    if !ws.outputs().is_empty() {
        problems.push(format!("outputs were written: {:?}", ws.outputs()));
    }
    let mut secrets = c.secrets.clone();
    secrets.push(PASSWORD);
    if let Err(leak) = std::panic::catch_unwind(|| assert_no_secrets(&run, &ws, &secrets)) {
        problems.push(format!("{:?}", leak.downcast_ref::<String>()));
    }
    // `SHOW_ERRORS=1 cargo test --test bad_inputs -- --nocapture` lists every message, for review.
    if std::env::var_os("SHOW_ERRORS").is_some() {
        eprintln!("{:<45} {}", c.name, errors.first().unwrap_or(&""));
    }
    (!problems.is_empty()).then(|| format!("{}: {}\n{run:?}", c.name, problems.join("; ")))
}

#[test]
fn every_bad_input_fails_once_clearly_and_changes_nothing() {
    let registries = Registries {
        plain: Registry::start(),
        protected: Registry::with_htpasswd(USER, PASSWORD),
    };
    let all = cases();
    assert!(all.len() >= 30, "the table has {} cases", all.len());
    let failures: Vec<String> = all
        .into_iter()
        .filter_map(|c| check(c, &registries))
        .collect();
    assert!(
        failures.is_empty(),
        "{} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn cli_mode_prints_one_error_line_on_stderr_and_nothing_on_stdout() {
    let ws = Workspace::new();
    ws.write("text.wasm", b"not wasm");
    let run = ws.run_cli(
        &["push", "text.wasm", "127.0.0.1:9/acme/bad:v1", "--insecure"],
        &[],
    );
    assert!(!run.success(), "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].contains("text.wasm` is not valid WebAssembly"),
        "{run:?}"
    );
}
