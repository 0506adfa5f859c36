//! A registry that misleads or floods the client: a token realm in plain HTTP behind an HTTPS
//! registry, endless error bodies and referrers listings, blobs that trickle or stall, and
//! thousands of listed referrers. The real registry where it can play the part (TLS, token
//! auth, a fallback index), in-process fakes for the rest.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::fakes::read_head;
use common::leaks::{assert_no_secrets, loud};
use common::raw::descriptor;
use common::tls::server_cert;
use common::token::TokenIssuer;
use common::*;

const USER: &str = "bot";
const PASSWORD: &str = "realm-password-77";

/// The real registry over HTTPS (a test CA) in token mode, its issuer reached in plain HTTP:
/// the challenge names `http://127.0.0.1:<issuer>/token`.
fn tls_token_registry(dir: &std::path::Path, issuer: &std::sync::Arc<TokenIssuer>) -> Registry {
    let cert = server_cert(dir, "realm-ca");
    Registry::start_with_options(
        Auth::None,
        RegistryOptions {
            tls: Some(cert),
            token: Some(issuer.clone()),
            ..Default::default()
        },
    )
}

#[test]
fn an_https_registry_never_gets_credentials_sent_to_a_plain_http_realm() {
    let issuer = TokenIssuer::start(&[(USER, PASSWORD)], &[("identity-refresh-41", USER)]);
    let ws = Workspace::new();
    let registry = tls_token_registry(ws.dir.path(), &issuer);
    let ca = ws.dir.path().join("realm-ca.crt");
    let realm = format!("http://127.0.0.1:{}/token", issuer.port);
    let image = format!("{}/acme/multiply", registry.host());

    // A push with the password.
    let mut env = loud(ws.multiply_env(
        &image,
        &[
            ("tags", "v1"),
            ("username", USER),
            ("password", PASSWORD),
            ("ca-file", ca.to_str().unwrap()),
        ],
    ));
    env.insert("WASM_OCI_RETRY_MAX_ELAPSED".into(), "2".into());
    let run = ws.run_action(&env);
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].contains(&realm) && errors[0].contains("plain HTTP"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("insecure"), "{}", errors[0]);
    assert_no_secrets(&run, &ws, &[PASSWORD]);

    // A pull with the password, from the CLI.
    let run = ws.run_cli(
        &[
            "pull",
            &format!("{image}:v1"),
            "--ca-file",
            ca.to_str().unwrap(),
        ],
        &[
            ("WASM_OCI_USERNAME", USER),
            ("WASM_OCI_PASSWORD", PASSWORD),
            ("WASM_OCI_RETRY_MAX_ELAPSED", "2"),
        ],
    );
    assert!(!run.success(), "{run:?}");
    assert!(run.stderr.contains(&realm), "{run:?}");

    // An identity token (an OAuth2 refresh token) from docker's config.
    let docker = ws.dir.path().join("home/.docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {registry.host(): {"auth": "PHRva2VuPjo=", "identitytoken": "identity-refresh-41"}}})
            .to_string(),
    )
    .unwrap();
    env.insert("INPUT_USERNAME".into(), String::new());
    env.insert("INPUT_PASSWORD".into(), String::new());
    let run = ws.run_action(&env);
    assert!(!run.success(), "{run:?}");
    assert!(run.error_lines()[0].contains(&realm), "{run:?}");

    // Nothing reached the realm: no password, no refresh token, no request at all.
    assert_eq!(issuer.requests(), Vec::<String>::new());
    assert!(registry.tags("acme/multiply").is_empty());
}

#[test]
fn a_realm_on_another_host_is_named_in_a_warning() {
    let issuer = TokenIssuer::start(&[(USER, PASSWORD)], &[]);
    let registry = Registry::start_with_options(
        Auth::None,
        RegistryOptions {
            token: Some(issuer.clone()),
            ..Default::default()
        },
    );
    let ws = Workspace::new();
    // The registry as `localhost`, its token service as `127.0.0.1`.
    let image = format!("localhost:{}/acme/multiply", registry.port);
    let env = ws.multiply_env(
        &image,
        &[
            ("tags", "v1"),
            ("insecure", "true"),
            ("username", USER),
            ("password", PASSWORD),
        ],
    );
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout.lines().any(|l| l.starts_with("::warning")
            && l.contains("localhost")
            && l.contains("127.0.0.1")),
        "{run:?}"
    );
    assert_eq!(registry.image_tags("acme/multiply"), ["v1"]);
}

/// What the hostile fake does besides serving one artifact.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flood {
    /// Every manifest read: a 500 whose body never ends.
    ManifestError,
    /// The referrers API: a 200 index whose `manifests` never end.
    Referrers,
    /// The layer: sent in ten pieces [`TRICKLE_GAP`] apart.
    Trickle,
    /// The layer: half of it, then nothing for [`STALL`].
    Stall,
}

/// The pause between two pieces of a trickled layer: well under the read timeout the tests
/// give (1 s), while the whole layer takes three times that.
const TRICKLE_GAP: Duration = Duration::from_millis(300);

/// How long a stalled layer stalls before its connection closes.
const STALL: Duration = Duration::from_secs(20);

/// A registry serving one valid artifact in `repo`, except for what `flood` names: an endless
/// body (no `Content-Length`, sent until the client hangs up), or a layer that trickles or
/// stalls. Returns its `127.0.0.1:PORT`, the manifest's digest and the layer.
fn flooding_registry(repo: &str, flood: Flood) -> (String, String, Vec<u8>) {
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    let config = br#"{"architecture":"wasm","os":"wasip1","layerDigests":[]}"#.to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.wasm.config.v0+json", &config),
        "layers": [descriptor("application/wasm", &wasm)],
    }))
    .unwrap();
    let digest = sha256(&manifest);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let repo = repo.to_owned();
    let layer = wasm.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (repo, manifest, config, wasm) =
                (repo.clone(), manifest.clone(), config.clone(), wasm.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                let Some((request_line, _)) = read_head(&mut reader) else {
                    return;
                };
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let path = path.split('?').next().unwrap_or("").to_owned();
                let endless =
                    |stream: &mut std::net::TcpStream, head: &str, start: &[u8], item: &[u8]| {
                        let _ = stream
                            .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes());
                        let _ = stream.write_all(start);
                        let block = item.repeat((64 << 10) / item.len());
                        while stream.write_all(&block).is_ok() {}
                    };
                let answer = |stream: &mut std::net::TcpStream,
                              status: &str,
                              ty: &str,
                              body: &[u8]| {
                    let _ = stream.write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Type: {ty}\r\nContent-Length: {}\r\nDocker-Content-Digest: {}\r\nConnection: close\r\n\r\n",
                            body.len(),
                            sha256(body)
                        )
                        .as_bytes(),
                    );
                    let _ = stream.write_all(body);
                };
                if path == "/v2/" {
                    answer(&mut stream, "200 OK", "application/json", b"{}");
                } else if path.starts_with(&format!("/v2/{repo}/manifests/")) {
                    if flood == Flood::ManifestError {
                        endless(
                            &mut stream,
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain",
                            b"",
                            b"internal error ",
                        );
                    } else {
                        answer(&mut stream, "200 OK", OCI_MANIFEST, &manifest);
                    }
                } else if path.starts_with(&format!("/v2/{repo}/referrers/")) {
                    let entry = format!(
                        r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"artifactType":"application/vnd.in-toto+json"}},"#,
                        sha256(b"x")
                    );
                    endless(
                        &mut stream,
                        &format!("HTTP/1.1 200 OK\r\nContent-Type: {OCI_INDEX}"),
                        br#"{"schemaVersion":2,"manifests":["#,
                        entry.as_bytes(),
                    );
                } else if path == format!("/v2/{repo}/blobs/{}", sha256(&config)) {
                    answer(&mut stream, "200 OK", "application/octet-stream", &config);
                } else if path == format!("/v2/{repo}/blobs/{}", sha256(&wasm)) {
                    if matches!(flood, Flood::Trickle | Flood::Stall) {
                        let _ = stream.write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                wasm.len()
                            )
                            .as_bytes(),
                        );
                        for (i, piece) in wasm.chunks(wasm.len().div_ceil(10)).enumerate() {
                            if flood == Flood::Stall && i == 5 {
                                std::thread::sleep(STALL);
                                break;
                            }
                            let _ = stream.write_all(piece);
                            let _ = stream.flush();
                            std::thread::sleep(TRICKLE_GAP);
                        }
                    } else {
                        answer(&mut stream, "200 OK", "application/octet-stream", &wasm);
                    }
                } else {
                    answer(
                        &mut stream,
                        "404 Not Found",
                        "text/plain",
                        b"404 page not found\n",
                    );
                }
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Both);
                let _ = reader.read(&mut [0u8; 1]);
            });
        }
    });
    (host, digest, layer)
}

/// The most address space the binary is given, in MiB: twice what a pull or verify needs here
/// (it runs in 128), far below what an endless body held in memory grows to.
const ADDRESS_SPACE_MIB: u64 = 256;

/// Runs the CLI with `args` under an address-space limit (`prlimit --as`), glibc's malloc held
/// to two arenas so the limit measures what is allocated, not what threads reserve.
fn run_limited(ws: &Workspace, args: &[&str]) -> Run {
    let prlimit = which("prlimit").expect("prlimit (util-linux) is installed");
    let mut command = std::process::Command::new(prlimit);
    command
        .arg(format!("--as={}", ADDRESS_SPACE_MIB << 20))
        .arg("--")
        .arg(BIN)
        .args(args)
        .current_dir(ws.root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", ws.dir.path().join("home"))
        .env("MALLOC_ARENA_MAX", "2")
        .env("WASM_OCI_RETRY_MAX_ATTEMPTS", "2")
        .env("WASM_OCI_RETRY_INITIAL_DELAY", "0.05")
        .env("WASM_OCI_HTTP_TIMEOUT", "10")
        .stdin(std::process::Stdio::null());
    let output = command.output().unwrap();
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    }
}

/// One line on stderr saying what failed (the CLI's `error: …`), and an exit, not an abort.
fn one_clear_error(run: &Run) -> &str {
    assert_eq!(run.output.status.code(), Some(1), "{run:?}");
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].len() < 1000, "{run:?}");
    errors[0]
}

#[test]
fn an_endless_error_body_is_cut_short_in_pull_and_inspect() {
    let ws = Workspace::new();
    let (host, digest, _) = flooding_registry("acme/app", Flood::ManifestError);
    let image = format!("{host}/acme/app@{digest}");
    for args in [
        &["pull", &image, "--insecure", "-o", "app.wasm"][..],
        &["inspect", &image, "--insecure"][..],
    ] {
        let run = run_limited(&ws, args);
        let error = one_clear_error(&run);
        assert!(
            error.contains("HTTP 500") && error.contains("internal error"),
            "{error}"
        );
    }
    assert!(!ws.root().join("app.wasm").exists());
}

#[test]
fn an_endless_referrers_listing_is_refused_in_verify_and_inspect() {
    let ws = Workspace::new();
    let (host, digest, _) = flooding_registry("acme/app", Flood::Referrers);
    let image = format!("{host}/acme/app@{digest}");
    for args in [
        &["verify", &image, "--insecure"][..],
        &["inspect", &image, "--insecure"][..],
    ] {
        let run = run_limited(&ws, args);
        let error = one_clear_error(&run);
        assert!(
            error.contains("referrers") && error.contains("larger than"),
            "{error}"
        );
    }
}

/// The CLI's environment for a read with a one-second read timeout.
fn with_timeout(ws: &Workspace, args: &[&str]) -> Run {
    ws.run_cli(
        args,
        &[
            ("WASM_OCI_HTTP_TIMEOUT", "1"),
            ("WASM_OCI_RETRY_MAX_ATTEMPTS", "1"),
        ],
    )
}

#[test]
fn a_slow_but_steady_download_outlasts_the_read_timeout() {
    let ws = Workspace::new();
    let (host, digest, layer) = flooding_registry("acme/app", Flood::Trickle);
    let image = format!("{host}/acme/app@{digest}");
    let run = with_timeout(&ws, &["pull", &image, "--insecure", "-o", "app.wasm"]);
    assert!(run.success(), "{run:?}");
    assert_eq!(std::fs::read(ws.root().join("app.wasm")).unwrap(), layer);
}

#[test]
fn a_stalled_download_fails_after_the_read_timeout() {
    let ws = Workspace::new();
    let (host, digest, _) = flooding_registry("acme/app", Flood::Stall);
    let image = format!("{host}/acme/app@{digest}");
    let run = with_timeout(&ws, &["pull", &image, "--insecure", "-o", "app.wasm"]);
    let error = one_clear_error(&run);
    assert!(
        error.contains("stalled") && error.contains("WASM_OCI_HTTP_TIMEOUT"),
        "{error}"
    );
    assert!(!ws.root().join("app.wasm").exists());
}
