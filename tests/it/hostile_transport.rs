//! A registry that misleads or floods the client: a token realm in plain HTTP behind an HTTPS
//! registry, endless error bodies and referrers listings, blobs that trickle or stall, and
//! thousands of listed referrers. The real registry where it can play the part (TLS, token
//! auth, a fallback index), in-process fakes for the rest.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::deadline::run_within;
use common::fakes::read_head;
use common::leaks::{assert_no_secrets, loud};
use common::proxy::{Fault, FaultProxy};
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

    // Without credentials there is nothing to keep from the realm: it is asked, with a warning.
    std::fs::remove_file(docker.join("config.json")).unwrap();
    let run = ws.run_cli(
        &[
            "pull",
            &format!("{image}:v1"),
            "--ca-file",
            ca.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr.contains(&realm) && run.stderr.contains("no credentials are sent"),
        "{run:?}"
    );
    assert_eq!(issuer.requests(), ["GET anonymous"]);
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
    /// The layer at ten bytes a second, far below the floor, until the client hangs up.
    Crawl,
    /// The layer: half of it, then nothing for [`STALL`].
    Stall,
    /// The manifest lists a config of a terabyte, whose body never ends.
    HugeConfig,
    /// No referrers API; the fallback tag lists `others` referrers that are not there, of
    /// the provenance type or not, and one real provenance referrer, first or last.
    Listing {
        others: usize,
        provenance_type: bool,
        real_first: bool,
    },
}

/// The pause between two pieces of a trickled layer: well under the read timeout the tests
/// give (1 s), while the whole layer takes three times that.
const TRICKLE_GAP: Duration = Duration::from_millis(300);

/// How long a stalled layer stalls before its connection closes.
const STALL: Duration = Duration::from_secs(20);

/// A running hostile fake.
struct Fake {
    /// `127.0.0.1:PORT`
    host: String,
    /// The artifact's manifest digest.
    digest: String,
    /// Its layer, a valid module.
    layer: Vec<u8>,
    /// Requests answered so far.
    requests: Arc<AtomicUsize>,
}

/// Writes a whole answer with a `Content-Length`.
fn answer(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nDocker-Content-Digest: {}\r\nConnection: close\r\n\r\n",
            body.len(),
            sha256(body)
        )
        .as_bytes(),
    );
    let _ = stream.write_all(body);
}

/// Writes `head`, then `start`, then `item` over and over until the client hangs up.
fn endless(stream: &mut TcpStream, head: &str, start: &[u8], item: &[u8]) {
    let _ = stream.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes());
    let _ = stream.write_all(start);
    let block = item.repeat((64 << 10) / item.len());
    while stream.write_all(&block).is_ok() {}
}

/// A registry serving one valid artifact in `repo`, with an unsigned provenance referrer
/// (in-toto statement) listed under the fallback tag, except for what `flood` names: an
/// endless body (no `Content-Length`, sent until the client hangs up), a layer that trickles
/// or stalls, or a listing of thousands.
fn hostile_registry(repo: &str, flood: Flood) -> Fake {
    // A trickled layer of 32 KiB moves some 10 KiB a second: slow, and above the floor.
    let wasm = match flood {
        Flood::Trickle | Flood::Stall => module_with_data(32 << 10, b""),
        _ => std::fs::read(multiply_wasm()).unwrap(),
    };
    let config = br#"{"architecture":"wasm","os":"wasip1","layerDigests":[]}"#.to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": if flood == Flood::HugeConfig {
            serde_json::json!({"mediaType": "application/vnd.wasm.config.v0+json", "digest": sha256(&config), "size": 1u64 << 40})
        } else {
            descriptor("application/vnd.wasm.config.v0+json", &config)
        },
        "layers": [descriptor("application/wasm", &wasm)],
    }))
    .unwrap();
    let digest = sha256(&manifest);
    let config_path = format!("/v2/{repo}/blobs/{}", sha256(&config));
    let statement = raw::statement(&digest, "https://github.com/acme/app", COMMIT);
    let referrer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": raw::IN_TOTO,
        "config": descriptor(raw::EMPTY_CONFIG, b"{}"),
        "layers": [descriptor(raw::IN_TOTO, &statement)],
        "subject": descriptor(OCI_MANIFEST, &manifest),
    }))
    .unwrap();
    let mut entry = descriptor(OCI_MANIFEST, &referrer);
    entry["artifactType"] = raw::IN_TOTO.into();
    let mut listed = vec![entry.clone()];
    if let Flood::Listing {
        others,
        provenance_type,
        real_first,
    } = flood
    {
        let artifact_type = if provenance_type {
            raw::IN_TOTO
        } else {
            "application/spdx+json"
        };
        listed = (0..others)
            .map(|i| {
                serde_json::json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": sha256(format!("absent {i}").as_bytes()),
                    "size": 600,
                    "artifactType": artifact_type,
                })
            })
            .collect();
        if real_first {
            listed.insert(0, entry);
        } else {
            listed.push(entry);
        }
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed,
    }))
    .unwrap();
    let fallback = format!("sha256-{}", digest.strip_prefix("sha256:").unwrap());
    let mut documents: BTreeMap<String, (&'static str, Vec<u8>)> = BTreeMap::new();
    for (name, ty, body) in [
        (format!("manifests/{digest}"), OCI_MANIFEST, manifest),
        (
            format!("manifests/{}", sha256(&referrer)),
            OCI_MANIFEST,
            referrer,
        ),
        (format!("manifests/{fallback}"), OCI_INDEX, index),
        (
            format!("blobs/{}", sha256(&config)),
            "application/octet-stream",
            config,
        ),
        (
            format!("blobs/{}", sha256(&statement)),
            "application/octet-stream",
            statement,
        ),
        (
            format!("blobs/{}", sha256(b"{}")),
            "application/octet-stream",
            b"{}".to_vec(),
        ),
    ] {
        documents.insert(format!("/v2/{repo}/{name}"), (ty, body));
    }
    let documents = Arc::new(documents);
    let layer_path = format!("/v2/{repo}/blobs/{}", sha256(&wasm));
    let referrers_path = format!("/v2/{repo}/referrers/");
    let manifests_path = format!("/v2/{repo}/manifests/");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let requests = Arc::new(AtomicUsize::new(0));
    let (counter, layer) = (requests.clone(), wasm.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let (documents, wasm) = (documents.clone(), wasm.clone());
            let (layer_path, referrers_path, manifests_path, config_path) = (
                layer_path.clone(),
                referrers_path.clone(),
                manifests_path.clone(),
                config_path.clone(),
            );
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                let Some((request_line, _)) = read_head(&mut reader) else {
                    return;
                };
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let path = path.split('?').next().unwrap_or("").to_owned();
                if path == "/v2/" {
                    answer(&mut stream, "200 OK", "application/json", b"{}");
                } else if flood == Flood::ManifestError && path.starts_with(&manifests_path) {
                    endless(
                        &mut stream,
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain",
                        b"",
                        b"internal error ",
                    );
                } else if flood == Flood::Referrers && path.starts_with(&referrers_path) {
                    let entry = format!(
                        r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"artifactType":"{}"}},"#,
                        sha256(b"x"),
                        raw::IN_TOTO
                    );
                    endless(
                        &mut stream,
                        &format!("HTTP/1.1 200 OK\r\nContent-Type: {OCI_INDEX}"),
                        br#"{"schemaVersion":2,"manifests":["#,
                        entry.as_bytes(),
                    );
                } else if flood == Flood::HugeConfig && path == config_path {
                    endless(
                        &mut stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream",
                        b"",
                        b"{}",
                    );
                } else if let Some((ty, body)) = documents.get(&path) {
                    answer(&mut stream, "200 OK", ty, body);
                } else if path == layer_path && flood == Flood::Crawl {
                    let _ = stream.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            wasm.len()
                        )
                        .as_bytes(),
                    );
                    for piece in wasm.chunks(10) {
                        if stream
                            .write_all(piece)
                            .and_then(|()| stream.flush())
                            .is_err()
                        {
                            break;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                } else if path == layer_path && matches!(flood, Flood::Trickle | Flood::Stall) {
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
                } else if path == layer_path {
                    answer(&mut stream, "200 OK", "application/octet-stream", &wasm);
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
    Fake {
        host,
        digest,
        layer,
        requests,
    }
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
    let fake = hostile_registry("acme/app", Flood::ManifestError);
    let image = format!("{}/acme/app@{}", fake.host, fake.digest);
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
    let fake = hostile_registry("acme/app", Flood::Referrers);
    let image = format!("{}/acme/app@{}", fake.host, fake.digest);
    for args in [
        &["verify", &image, "--insecure", "--require-signature=false"][..],
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
    let fake = hostile_registry("acme/app", Flood::Trickle);
    let image = format!("{}/acme/app@{}", fake.host, fake.digest);
    let run = with_timeout(&ws, &["pull", &image, "--insecure", "-o", "app.wasm"]);
    assert!(run.success(), "{run:?}");
    assert_eq!(
        std::fs::read(ws.root().join("app.wasm")).unwrap(),
        fake.layer
    );
}

#[test]
fn a_stalled_download_fails_after_the_read_timeout() {
    let ws = Workspace::new();
    let fake = hostile_registry("acme/app", Flood::Stall);
    let image = format!("{}/acme/app@{}", fake.host, fake.digest);
    let run = with_timeout(&ws, &["pull", &image, "--insecure", "-o", "app.wasm"]);
    let error = one_clear_error(&run);
    assert!(
        error.contains("stalled") && error.contains("WASM_OCI_HTTP_TIMEOUT"),
        "{error}"
    );
    assert!(!ws.root().join("app.wasm").exists());
}

#[test]
fn a_download_that_crawls_below_the_floor_is_cut_and_retried() {
    let ws = Workspace::new();
    let fake = hostile_registry("acme/app", Flood::Crawl);
    let image = format!("{}/acme/app@{}", fake.host, fake.digest);
    let started = std::time::Instant::now();
    let run = run_within(
        &ws,
        &["pull", &image, "--insecure", "-o", "app.wasm"],
        &[
            ("WASM_OCI_HTTP_TIMEOUT", "2"),
            ("WASM_OCI_RETRY_MAX_ATTEMPTS", "2"),
            ("WASM_OCI_RETRY_INITIAL_DELAY", "0.05"),
        ],
        Duration::from_secs(60),
    );
    let elapsed = started.elapsed();
    let error = one_clear_error(&run);
    assert!(
        error.contains(&format!("the download of blob {}", sha256(&fake.layer)))
            && error.contains("too slow")
            && error.contains("under the floor of 1 KiB/s (`WASM_OCI_HTTP_TIMEOUT`)")
            && error.contains("gave up after 2 attempts"),
        "{error}"
    );
    // Two windows of two seconds and a backoff, not the twelve seconds the layer takes.
    assert!(elapsed < Duration::from_secs(9), "{elapsed:?}");
    assert!(
        run.stderr.contains("failed (too slow); retrying"),
        "{run:?}"
    );
    assert!(!ws.root().join("app.wasm").exists());
}

/// Runs `verify` on the fake's artifact; returns the run and how many requests it made.
fn verify_listing(others: usize, provenance_type: bool, real_first: bool) -> (Run, usize) {
    let ws = Workspace::new();
    let fake = hostile_registry(
        "acme/app",
        Flood::Listing {
            others,
            provenance_type,
            real_first,
        },
    );
    let image = format!("{}/acme/app@{}", fake.host, fake.digest);
    let run = ws.run_cli(
        &["verify", &image, "--insecure", "--require-signature=false"],
        &[],
    );
    (run, fake.requests.load(Ordering::SeqCst))
}

#[test]
fn ten_thousand_referrers_of_other_types_are_not_fetched() {
    let (run, requests) = verify_listing(10_000, false, true);
    assert!(run.success(), "{run:?}");
    // `/v2/`, manifest, config, layer, the referrers API, the fallback tag, one referrer
    // manifest and its statement.
    assert!(requests <= 10, "{requests} requests\n{run:?}");
}

#[test]
fn ten_thousand_provenance_referrers_are_checked_newest_first_within_a_bound() {
    // The real one is the newest: it passes, and few others were fetched beside it.
    let (run, requests) = verify_listing(10_000, true, false);
    assert!(run.success(), "{run:?}");
    assert!(requests <= 30, "{requests} requests\n{run:?}");

    // The real one is the oldest: the newest 32 are checked, none passes, and verify says so.
    let (run, requests) = verify_listing(10_000, true, true);
    assert_eq!(run.output.status.code(), Some(1), "{run:?}");
    let error = one_clear_error(&run);
    assert!(
        error.contains("10001 referrers") && error.contains("more than the 32 newest"),
        "{error}"
    );
    assert!(requests <= 50, "{requests} requests\n{run:?}");
}

#[test]
fn an_endless_error_body_is_cut_short_in_push() {
    let registry = Registry::start();
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    for (what, method, path) in [
        ("the manifest upload", "PUT", "/manifests/"),
        ("the upload of blob", "POST", "/blobs/uploads/"),
    ] {
        let proxy = FaultProxy::start(registry.port, move |_, m, p| {
            if m == method && p.contains(path) {
                Fault::Endless(500)
            } else {
                Fault::Pass
            }
        });
        let image = format!("{}/acme/endless:v1", proxy.host());
        let run = run_limited(&ws, &["push", "m.wasm", &image, "--insecure"]);
        let error = one_clear_error(&run);
        assert!(
            error.contains(what) && error.contains("HTTP 500") && error.contains("endless error"),
            "{error}"
        );
    }
    assert!(registry.tags("acme/endless").is_empty());
}

#[test]
fn a_config_listed_as_a_terabyte_is_not_read_into_memory() {
    let ws = Workspace::new();
    let fake = hostile_registry("acme/app", Flood::HugeConfig);
    let image = format!("{}/acme/app@{}", fake.host, fake.digest);
    for args in [
        &["verify", &image, "--insecure", "--require-signature=false"][..],
        &["inspect", &image, "--insecure"][..],
    ] {
        let run = run_limited(&ws, args);
        let error = one_clear_error(&run);
        assert!(error.contains("1099511627776 bytes"), "{error}");
    }
}
