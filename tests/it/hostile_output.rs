//! What a hostile registry or a careless workflow puts in front of the binary, and what the
//! user must see: no workflow command the registry wrote, no file outside its target, files
//! others can read, no special file replaced, one clear error line instead of a panic, and no
//! secret in an error. Registry-stored hostile values go through the real registry (it stores
//! any title or statement); a refusal the real registry never sends comes from a fake.

use crate::common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use common::fakes::read_head;
use common::raw::*;
use common::*;
use serde_json::json;

/// A layer title written to start commands of its own in the runner's log: `::error`,
/// `::add-mask::` (which would hide every digest after it), the older `##[` form, and a path.
const HOSTILE: &str =
    "x\n::error title=INJECTED::boom\n::add-mask::sha256\n##[add-mask]sha256\r\n../../foo.wasm";

/// Pushes the multiply module as wkg does, with `title` on its layer. Returns the digest.
fn push_titled(registry: &Registry, repo: &str, tag: &str, title: Option<&str>) -> String {
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    let config = serde_json::to_vec(&json!({
        "created": "2024-05-01T00:00:00Z",
        "architecture": "wasm",
        "os": "wasip1",
        "layerDigests": [sha256(&wasm)],
    }))
    .unwrap();
    push_raw(
        registry,
        repo,
        tag,
        ("application/vnd.wasm.config.v0+json", &config),
        &[(&wasm, "application/wasm", title)],
        json!({}),
    )
}

/// Fails when any line the runner reads (stdout or stderr) is a command the registry's text
/// started: `::error`, `::add-mask::`, or, in a line that is no `::` command, the older `##[`
/// form, which the runner looks for anywhere in such a line.
fn assert_no_injected_command(run: &Run) {
    for line in run.stdout.lines().chain(run.stderr.lines()) {
        let command = line.trim_start();
        assert!(
            !command.starts_with("::error")
                && !command.starts_with("::add-mask::")
                && (command.starts_with("::") || !line.contains("##[")),
            "a line reads as a workflow command: {line:?}\n{run:?}"
        );
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_hostile_layer_title_starts_no_command_and_writes_inside_the_target() {
    let registry = Registry::start();
    let ws = Workspace::new();
    push_titled(&registry, "acme/app", "v1", Some(HOSTILE));
    let image = format!("{}/acme/app:v1", registry.host());
    let run = ws.run_action(&ws.action_env(&[
        ("command", "pull"),
        ("image", &image),
        ("insecure", "true"),
    ]));
    assert!(run.success(), "{run:?}");
    assert_no_injected_command(&run);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("::warning::") && l.contains("is not a plain file name")),
        "the fallback is said: {run:?}"
    );

    // The file under the repository's name, in the workspace; nothing anywhere else.
    let outputs = ws.outputs();
    assert_eq!(outputs["path"], "app.wasm", "{run:?}");
    assert_eq!(names_in(&ws.root()), ["app.wasm"]);
    assert_eq!(names_in(ws.dir.path()), ["file_commands", "home", "ws"]);
    assert_eq!(
        std::fs::read(ws.root().join("app.wasm")).unwrap(),
        std::fs::read(multiply_wasm()).unwrap()
    );
    let raw_outputs = std::fs::read_to_string(ws.output_file()).unwrap();
    assert!(!raw_outputs.contains("INJECTED"), "{raw_outputs}");
    for (name, value) in &outputs {
        assert!(!value.contains(['\n', '\r']), "output {name}: {value:?}");
    }
}

#[test]
fn registry_text_in_a_log_line_starts_no_command() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let digest = push_titled(&registry, "acme/app", "v1", None);
    // Provenance anyone with push access can attach: the repository it names is printed when
    // nothing is expected of it.
    let statement = statement(&digest, HOSTILE, COMMIT);
    attach_referrer(&registry, "acme/app", &digest, (&statement, IN_TOTO));
    let image = format!("{}/acme/app@{digest}", registry.host());
    let run = ws.run_action(&ws.action_env(&[
        ("command", "verify"),
        ("image", &image),
        ("insecure", "true"),
        // Unsigned on purpose: the statement's hostile text must still be read and defused.
        ("require-signature", "false"),
    ]));
    assert_no_injected_command(&run);
    assert!(
        run.stdout.contains("x%0A::error title=INJECTED::boom%0A"),
        "the statement's repository is printed, escaped: {run:?}"
    );

    // The CLI in a `run:` step: the runner reads its stderr for commands too.
    let run = ws.run_cli(
        &["verify", &image, "--insecure", "--require-signature=false"],
        &[("GITHUB_ACTIONS", "true")],
    );
    assert_no_injected_command(&run);
    assert!(
        run.stderr.contains("%3A:error title=INJECTED::boom"),
        "the statement's repository is printed, defused: {run:?}"
    );
}

/// Runs the binary with `args` under umask 022 (as a runner's shell has it), cwd `dir`.
fn run_umask(dir: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn pulled_files_and_layouts_are_readable_by_others() {
    let registry = Registry::start();
    let ws = Workspace::new();
    push_titled(&registry, "acme/app", "v1", Some("app.wasm"));
    let image = format!("{}/acme/app:v1", registry.host());
    run_umask(&ws.root(), &["pull", &image, "--insecure"]);
    assert_eq!(mode(&ws.root().join("app.wasm")), 0o644);

    // A layout, written by a push: every file 0644, every directory 0755.
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    run_umask(&ws.root(), &["push", "m.wasm", "oci:out:v1"]);
    let mut seen = 0;
    let mut dirs = vec![ws.root().join("out")];
    while let Some(dir) = dirs.pop() {
        assert_eq!(mode(&dir), 0o755, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                assert_eq!(mode(&path), 0o644, "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 5, "oci-layout, index.json and the blobs: {seen}");
}

#[test]
fn a_replaced_file_keeps_its_mode() {
    let registry = Registry::start();
    let ws = Workspace::new();
    push_titled(&registry, "acme/app", "v1", Some("app.wasm"));
    let image = format!("{}/acme/app:v1", registry.host());
    for wanted in [0o640, 0o755] {
        let dest = ws.write("app.wasm", b"old");
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(wanted)).unwrap();
        run_umask(
            &ws.root(),
            &["pull", &image, "--insecure", "-o", "app.wasm"],
        );
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            std::fs::read(multiply_wasm()).unwrap()
        );
        assert_eq!(mode(&dest), wanted);
    }
}

#[test]
fn pull_refuses_a_target_that_is_not_a_regular_file() {
    let registry = Registry::start();
    let ws = Workspace::new();
    push_titled(&registry, "acme/app", "v1", Some("app.wasm"));
    let image = format!("{}/acme/app:v1", registry.host());

    let fifo = ws.root().join("pipe.wasm");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    std::os::unix::fs::symlink("/dev/null", ws.root().join("null.wasm")).unwrap();
    // A directory where the title would be written, inside the directory given as `output`.
    std::fs::create_dir_all(ws.root().join("bin/app.wasm")).unwrap();

    for (output, kind) in [
        ("pipe.wasm", "a FIFO"),
        ("null.wasm", "a character device"),
        ("bin", "a directory"),
    ] {
        let run = ws.run_cli(&["pull", &image, "--insecure", "-o", output], &[]);
        assert!(!run.success(), "{run:?}");
        let errors: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{run:?}");
        assert!(
            errors[0].contains(&format!("it is {kind}, not a regular file")),
            "{run:?}"
        );
    }
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(
        std::fs::symlink_metadata(ws.root().join("null.wasm"))
            .unwrap()
            .is_symlink()
    );
    assert!(ws.root().join("bin/app.wasm").is_dir());

    // The action's `output`: one `::error` line, the FIFO left as it was.
    let run = ws.run_action(&ws.action_env(&[
        ("command", "pull"),
        ("image", &image),
        ("insecure", "true"),
        ("output", "pipe.wasm"),
    ]));
    assert!(!run.success(), "{run:?}");
    assert_eq!(run.error_lines().len(), 1, "{run:?}");
    assert!(
        run.error_lines()[0].contains("a FIFO, not a regular file"),
        "{run:?}"
    );
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // The directory semantics hold: an existing directory receives the title.
    std::fs::create_dir_all(ws.root().join("dist")).unwrap();
    let run = ws.run_cli(&["pull", &image, "--insecure", "-o", "dist"], &[]);
    assert!(run.success(), "{run:?}");
    assert!(ws.root().join("dist/app.wasm").is_file());
}

#[test]
fn out_of_range_ports_and_durations_give_one_error_line() {
    let ws = Workspace::new();
    for port in ["0", "65536", "99999999999"] {
        let image = format!("localhost:{port}/acme/app");
        let run = ws.run_action(&ws.multiply_env(&image, &[("dry-run", "true")]));
        assert!(!run.success(), "{run:?}");
        assert_eq!(run.error_lines().len(), 1, "{run:?}");
        assert!(
            run.error_lines()[0].contains("input `image`")
                && run.error_lines()[0].contains("from 1 to 65535"),
            "{run:?}"
        );
        let run = ws.run_cli(&["pull", &format!("{image}:v1")], &[]);
        assert!(!run.success(), "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        assert!(run.stderr.starts_with("error: input `image`"), "{run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    }
    for var in ["WASM_OCI_HTTP_TIMEOUT", "WASM_OCI_RETRY_INITIAL_DELAY"] {
        for value in ["1e300", "-1", "NaN", "inf"] {
            let mut env = ws.multiply_env("127.0.0.1:9/acme/app", &[("insecure", "true")]);
            env.insert(var.to_owned(), value.to_owned());
            let run = ws.run_action(&env);
            assert!(!run.success(), "{run:?}");
            assert_eq!(run.error_lines().len(), 1, "{run:?}");
            assert!(
                run.error_lines()[0].contains(&format!("input `{var}`: `{value}` is not a number")),
                "{run:?}"
            );
            let run = ws.run_cli(&["pull", "127.0.0.1:9/acme/app:v1"], &[(var, value)]);
            assert!(!run.success(), "{run:?}");
            assert!(!run.stderr.contains("panicked"), "{run:?}");
            assert!(
                run.stderr.starts_with(&format!("error: input `{var}`")),
                "{run:?}"
            );
        }
    }
}

/// Runs the binary with `env` plus `raw` (values that need not be UTF-8), cwd the workspace.
fn run_raw(
    ws: &Workspace,
    args: &[&str],
    env: &BTreeMap<String, String>,
    raw: &[(&str, &[u8])],
) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(ws.root())
        .env_clear()
        .envs(env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", ws.dir.path().join("home"))
        .stdin(Stdio::null());
    for (name, value) in raw {
        cmd.env(name, OsStr::from_bytes(value));
    }
    let output = cmd.output().unwrap();
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    }
}

#[test]
fn inputs_that_are_not_utf8_are_refused_by_name() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let image = format!("{}/acme/app", registry.host());
    let env = ws.multiply_env(&image, &[("insecure", "true"), ("tags", "v1")]);
    for (var, input) in [("INPUT_DRY-RUN", "dry-run"), ("INPUT_TAGS", "tags")] {
        let run = run_raw(&ws, &["action"], &env, &[(var, b"tr\xffue")]);
        assert!(!run.success(), "{run:?}");
        assert_eq!(run.error_lines().len(), 1, "{run:?}");
        assert!(
            run.error_lines()[0].contains(&format!(
                "input `{input}`: the value of `{var}` is not UTF-8"
            )),
            "{run:?}"
        );
    }
    assert!(registry.tags("acme/app").is_empty(), "nothing was pushed");

    let empty = BTreeMap::new();
    for var in ["WASM_OCI_HTTP_TIMEOUT", "WASM_OCI_IMAGE"] {
        let run = run_raw(
            &ws,
            &[
                "push",
                "multiply.wasm",
                &format!("{image}:v1"),
                "--insecure",
            ],
            &empty,
            &[(var, b"\xff")],
        );
        assert!(!run.success(), "{run:?}");
        assert!(
            run.stderr
                .contains(&format!("the value of `{var}` is not UTF-8")),
            "{run:?}"
        );
    }
    assert!(registry.tags("acme/app").is_empty(), "nothing was pushed");
}

#[test]
fn a_tag_given_twice_is_pushed_and_reported_once() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let image = format!("{}/acme/app", registry.host());
    let run = ws.run_action(&ws.multiply_env(
        &image,
        &[
            ("insecure", "true"),
            ("provenance", "false"),
            ("tags", "v1,latest\nv1, v1"),
        ],
    ));
    assert!(run.success(), "{run:?}");
    assert_eq!(ws.outputs()["tags"], "v1,latest");
    assert_eq!(
        run.stdout.lines().filter(|l| *l == "tagged v1").count(),
        1,
        "{run:?}"
    );
}

#[test]
fn a_special_file_as_path_is_not_called_a_directory() {
    let ws = Workspace::new();
    let fifo = ws.root().join("pipe.wasm");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (path, kind) in [("/dev/zero", "a character device"), ("pipe.wasm", "a FIFO")] {
        let mut env = ws.action_env(&[
            ("image", "127.0.0.1:9/acme/app"),
            ("path", path),
            ("dry-run", "true"),
        ]);
        env.insert("INPUT_BUILD".into(), "none".into());
        let run = ws.run_action(&env);
        assert!(!run.success(), "{run:?}");
        assert_eq!(run.error_lines().len(), 1, "{run:?}");
        let line = run.error_lines()[0];
        assert!(
            line.contains(&format!("`{path}` is not a regular file ({kind})")),
            "{run:?}"
        );
        assert!(!line.contains("directory"), "{run:?}");
    }
}

/// A registry that accepts the credentials and denies the repository: `403 DENIED` on every
/// manifest read, as ghcr.io and Harbor answer a user without read access. Returns its host.
fn denying_registry() -> String {
    use std::io::{BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let Some((request_line, _)) = read_head(&mut reader) else {
                continue;
            };
            let (status, body) = if request_line.contains(" /v2/ ") {
                ("200 OK", "{}".to_owned())
            } else {
                (
                    "403 Forbidden",
                    r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#
                        .to_owned(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.flush();
        }
    });
    host
}

#[test]
fn a_denied_pull_says_pull_access() {
    let host = denying_registry();
    let ws = Workspace::new();
    let image = format!("{host}/acme/app:v1");
    let creds = [
        ("WASM_OCI_USERNAME", "bot"),
        ("WASM_OCI_PASSWORD", "pw-123456"),
        // verify would otherwise stop at naming the signer, before the registry is reached.
        ("WASM_OCI_REQUIRE_SIGNATURE", "false"),
    ];
    for command in ["pull", "verify", "inspect"] {
        let run = ws.run_cli(&[command, &image, "--insecure"], &creds);
        assert!(!run.success(), "{run:?}");
        assert!(run.stderr.contains("denied user `bot`"), "{run:?}");
        assert!(run.stderr.contains("lack pull access"), "{run:?}");
        assert!(!run.stderr.contains("push access"), "{run:?}");
    }
}

/// A registry that refuses every request with `401` and an error message quoting the basic
/// credentials it was sent, as a careless registry's error pages do. Returns its host.
pub(crate) fn echoing_registry() -> String {
    use base64::Engine as _;
    use std::io::{BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let Some((_, headers)) = read_head(&mut reader) else {
                continue;
            };
            let sent = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .and_then(|(_, v)| v.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let body = json!({"errors": [{"code": "UNAUTHORIZED", "message": format!("no user matches {sent}")}]})
                .to_string();
            let response = format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"registry\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.flush();
        }
    });
    host
}

#[test]
fn read_errors_never_show_a_password() {
    let host = echoing_registry();
    let ws = Workspace::new();
    let password = "Sup3r-s3cret-pw";
    let image = format!("{host}/acme/app:v1");
    let creds = [
        ("WASM_OCI_USERNAME", "bot"),
        ("WASM_OCI_PASSWORD", password),
        // verify would otherwise stop at naming the signer, before the registry is reached.
        ("WASM_OCI_REQUIRE_SIGNATURE", "false"),
    ];
    for command in ["pull", "verify", "inspect"] {
        let run = ws.run_cli(&[command, &image, "--insecure"], &creds);
        assert!(!run.success(), "{run:?}");
        assert!(
            run.stderr.contains("no user matches ***"),
            "the registry's words, redacted: {run:?}"
        );
        assert!(!run.all().contains(password), "{run:?}");
    }
}

#[test]
fn inspect_sums_hostile_sizes_without_overflow() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let run = ws.run_cli(&["push", "m.wasm", "oci:out:v1"], &[]);
    assert!(run.success(), "{run:?}");
    // A manifest whose layer claims the largest size there is, tagged `big`.
    let out = ws.root().join("out");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.wasm.config.v0+json", b"{}"),
        "layers": [{"mediaType": "application/wasm", "digest": sha256(b"x"), "size": u64::MAX}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256(&bytes);
    std::fs::write(out.join("blobs/sha256").join(&digest[7..]), &bytes).unwrap();
    std::fs::write(out.join("blobs/sha256").join(&sha256(b"{}")[7..]), b"{}").unwrap();
    let index_path = out.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "big"},
    }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    let run = ws.run_cli(&["inspect", "oci:out:big"], &[]);
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    assert!(run.success(), "{run:?}");
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["totalSize"], u64::MAX);
}
