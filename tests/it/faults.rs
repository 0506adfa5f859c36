//! Faults between the action and the real registry, injected by a proxy: connection resets
//! halfway through an upload, bursts of 503, 429 with `Retry-After`, stalled responses, and
//! `BLOB_UNKNOWN` on the manifest put. A push through a third of failing requests completes
//! byte-identical; a push through nothing but failures gives up within its bound, moves no tag.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::leaks::{assert_no_secrets, loud};
use common::proxy::{Fault, FaultProxy};
use common::*;
use std::process::Command;

/// A valid 4 MiB core module: the header and one custom section of filler.
fn big_wasm() -> Vec<u8> {
    let payload_len: usize = 4 * 1024 * 1024;
    let name = b"filler";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend((0..payload_len).map(|i| (i * 31 % 251) as u8));
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.push(0); // custom section
    let mut len = section.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        wasm.push(if len == 0 { byte } else { byte | 0x80 });
        if len == 0 {
            break;
        }
    }
    wasm.extend_from_slice(&section);
    wasm
}

fn env_through(
    ws: &Workspace,
    proxy: &FaultProxy,
    bounds: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let image = format!("{}/acme/big", proxy.host());
    let mut env = loud(ws.action_env(&[
        ("image", &image),
        ("path", "big.wasm"),
        ("tags", "1.0.0, latest"),
        ("insecure", "true"),
    ]));
    for (k, v) in bounds {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

#[test]
fn a_third_of_requests_failing_still_pushes_byte_identical() {
    let registry = Registry::with_htpasswd("bot", "retry-password-8");
    let upload_reset = AtomicBool::new(false);
    // How often each request has failed: a third of all requests fail, but none more than
    // `MOST_FAILURES` times, so no one operation meets a failure at every one of its attempts
    // (the requests of concurrent operations take their turns in the schedule in any order).
    const MOST_FAILURES: usize = 3;
    let failed: Mutex<BTreeMap<String, usize>> = Mutex::default();
    let proxy = FaultProxy::start(registry.port, move |n, method, path| {
        // The first blob upload is cut halfway through.
        if method == "PUT"
            && path.contains("/blobs/uploads/")
            && !upload_reset.swap(true, Ordering::SeqCst)
        {
            return Fault::Reset;
        }
        let kinds = [
            Fault::Unavailable,
            Fault::Throttle,
            Fault::Unavailable,
            Fault::Stall,
        ];
        let fault = match (n % 3, (n / 3) % 4) {
            (1, k) => kinds[k].clone(),
            (2, 0) => Fault::Unavailable, // a burst: two 503s in a row
            _ => return Fault::Pass,
        };
        // The same request again: an upload session's URL changes, the blob's digest does not.
        let request = match path.split_once("digest=") {
            Some((_, digest)) => format!("{method} {digest}"),
            None => format!("{method} {}", path.split('?').next().unwrap_or(path)),
        };
        let mut failed = failed.lock().unwrap();
        let count = failed.entry(request).or_default();
        if *count == MOST_FAILURES {
            return Fault::Pass;
        }
        *count += 1;
        fault
    });
    let ws = Workspace::new();
    let wasm = big_wasm();
    ws.write("big.wasm", &wasm);
    let run = ws.run_action(&env_through(
        &ws,
        &proxy,
        &[
            ("WASM_OCI_HTTP_TIMEOUT", "1"),
            ("WASM_OCI_RETRY_INITIAL_DELAY", "0.05"),
            ("WASM_OCI_RETRY_MAX_ATTEMPTS", "10"),
            ("WASM_OCI_RETRY_MAX_ELAPSED", "60"),
            ("INPUT_USERNAME", "bot"),
            ("INPUT_PASSWORD", "retry-password-8"),
        ],
    ));
    let log = proxy.log();
    assert!(run.success(), "{run:?}\n{}", log.join("\n"));
    for kind in ["Reset", "Unavailable", "Throttle", "Stall"] {
        assert!(
            log.iter().any(|l| l.ends_with(kind)),
            "no {kind} in\n{}",
            log.join("\n")
        );
    }
    assert!(
        proxy.faults() * 4 >= log.len(),
        "at least a quarter failed:\n{}",
        log.join("\n")
    );

    // Each retry is logged with its reason; a 429's Retry-After (1 s) is waited out.
    let retries: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("retrying in"))
        .collect();
    assert!(retries.iter().any(|l| l.contains("HTTP 503")), "{run:?}");
    assert!(
        retries
            .iter()
            .any(|l| l.contains("429") && l.contains("retrying in 1.0s")),
        "{run:?}"
    );
    assert!(
        retries.iter().all(|l| l.starts_with("::warning::")),
        "{retries:?}"
    );

    // The registry holds exactly what was pushed.
    let digest = &ws.outputs()["digest"];
    let (manifest, _) = registry.manifest("acme/big", "1.0.0").expect("tagged");
    assert_eq!(&sha256(&manifest), digest);
    assert_eq!(registry.manifest("acme/big", "latest").unwrap().0, manifest);
    assert_eq!(registry.blob("acme/big", &sha256(&wasm)), wasm);
    assert_no_secrets(&run, &ws, &["retry-password-8"]);
}

#[test]
fn every_request_failing_gives_up_in_time_with_the_last_error() {
    let registry = Registry::start();
    let proxy = FaultProxy::start(registry.port, |_, _, _| Fault::Unavailable);
    let ws = Workspace::new();
    ws.write("big.wasm", &big_wasm());
    let started = Instant::now();
    let run = ws.run_action(&env_through(
        &ws,
        &proxy,
        &[
            ("WASM_OCI_RETRY_MAX_ELAPSED", "3"),
            ("WASM_OCI_RETRY_INITIAL_DELAY", "0.2"),
        ],
    ));
    let took = started.elapsed();
    assert!(!run.success(), "{run:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].contains("HTTP 503"), "{}", errors[0]);
    assert!(errors[0].contains("gave up after"), "{}", errors[0]);
    assert!(errors[0].contains(&proxy.host()), "{}", errors[0]);
    assert!(proxy.log().len() >= 3, "it did retry: {:?}", proxy.log());
    assert!(registry.tags("acme/big").is_empty());
    assert_eq!(registry.upload_count(), 0);
}

#[test]
fn blob_unknown_on_the_manifest_put_is_retried() {
    let registry = Registry::start();
    let once = AtomicBool::new(false);
    let proxy = FaultProxy::start(registry.port, move |_, method, path| {
        if method == "PUT" && path.contains("/manifests/") && !once.swap(true, Ordering::SeqCst) {
            Fault::Answer(
                400,
                r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#
                    .into(),
            )
        } else {
            Fault::Pass
        }
    });
    let ws = Workspace::new();
    ws.write("big.wasm", &big_wasm());
    let run = ws.run_action(&env_through(
        &ws,
        &proxy,
        &[("WASM_OCI_RETRY_INITIAL_DELAY", "0.05")],
    ));
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("BLOB_UNKNOWN") && l.contains("retrying in")),
        "{run:?}"
    );
    assert_eq!(
        sha256(&registry.manifest("acme/big", "1.0.0").unwrap().0),
        ws.outputs()["digest"]
    );
}

#[test]
fn a_400_with_an_error_code_fails_at_once_with_the_registrys_words() {
    let registry = Registry::start();
    let proxy = FaultProxy::start(registry.port, |_, method, path| {
        if method == "PUT" && path.contains("/manifests/") {
            Fault::Answer(
                400,
                r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#.into(),
            )
        } else {
            Fault::Pass
        }
    });
    let ws = Workspace::new();
    ws.write("big.wasm", &big_wasm());
    let run = ws.run_action(&env_through(&ws, &proxy, &[]));
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].contains("MANIFEST_INVALID: manifest invalid"),
        "{}",
        errors[0]
    );
    // The refusal is not retried (a blob's upload may be: this proxy closes every connection).
    assert!(
        !run.stdout
            .lines()
            .any(|l| l.contains("retrying in") && l.contains("manifest")),
        "{run:?}"
    );
    // Each manifest (the artifact's, and its provenance's beside it) was put once, not again.
    let manifest_puts: Vec<String> = proxy
        .log()
        .into_iter()
        .filter(|l| l.contains("PUT") && l.contains("/manifests/"))
        // Without the request's number: `PUT <path> -> <fault>`.
        .map(|l| {
            l.split_once(' ')
                .map_or(l.clone(), |(_, rest)| rest.to_owned())
        })
        .collect();
    assert!(!manifest_puts.is_empty(), "{:?}", proxy.log());
    let mut distinct = manifest_puts.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), manifest_puts.len(), "{:?}", proxy.log());
    assert!(registry.tags("acme/big").is_empty());
}

#[test]
fn a_layer_sent_while_hashed_is_sent_again_after_a_reset_and_a_503() {
    use futures_util::FutureExt;
    use wasm_oci::registry::remote::{Access, Connection, Remote};
    use wasm_oci::registry::{Gate, WriteTarget};

    let registry = Registry::start();
    let (reset, unavailable) = (AtomicBool::new(false), AtomicBool::new(false));
    let proxy = FaultProxy::start(registry.port, move |_, method, path| {
        if !path.contains("/blobs/uploads/") {
            return Fault::Pass;
        }
        match method {
            "PATCH" if !reset.swap(true, Ordering::SeqCst) => Fault::Reset,
            "PUT" if !unavailable.swap(true, Ordering::SeqCst) => Fault::Unavailable,
            _ => Fault::Pass,
        }
    });
    let ws = Workspace::new();
    let wasm = big_wasm();
    let path = ws.write("big.wasm", &wasm);
    let digest: wasm_oci::reference::Digest = sha256(&wasm).parse().unwrap();
    let mut env = wasm_oci::context::Env::new();
    env.insert("WASM_OCI_RETRY_INITIAL_DELAY".into(), "0.05".into());
    let remote = Remote::new(
        format!("{}/acme/big", proxy.host()).parse().unwrap(),
        &Connection {
            insecure: true,
            policy: wasm_oci::registry::retry::Policy::from_env(&env).unwrap(),
            env,
            ..Default::default()
        },
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(remote.login(Access::Write)).unwrap();
    let hashed = futures_util::future::ready(Ok((digest.clone(), wasm.len() as u64)))
        .boxed()
        .shared();
    let media_type = wasm_oci::artifact::Format::Cncf.layer_media_type();
    let stored = runtime
        .block_on(remote.put_blob_file_hashing(
            media_type,
            &path,
            wasm.len() as u64,
            &Gate::open(),
            hashed,
        ))
        .unwrap();
    assert_eq!(stored, digest);
    let log = proxy.log();
    assert!(
        log.iter()
            .any(|l| l.contains("PATCH") && l.ends_with("Reset")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("PUT") && l.ends_with("Unavailable")),
        "{log:?}"
    );
    assert_eq!(registry.blob("acme/big", &digest.to_string()), wasm);
}

#[test]
fn a_registry_refusing_an_upload_in_one_patch_gets_it_in_one_put() {
    let registry = Registry::start();
    let proxy = FaultProxy::start(registry.port, |_, method, path| {
        if method == "PATCH" && path.contains("/blobs/uploads/") {
            return Fault::Answer(
                400,
                r#"{"errors":[{"code":"UNSUPPORTED","message":"chunked uploads are not supported"}]}"#
                    .to_owned(),
            );
        }
        Fault::Pass
    });
    let ws = Workspace::new();
    let wasm = big_wasm();
    ws.write("big.wasm", &wasm);
    let run = ws.run_action(&env_through(&ws, &proxy, &[]));
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout
            .contains("uploading the layer in one request instead"),
        "{run:?}"
    );
    assert_eq!(registry.blob("acme/big", &sha256(&wasm)), wasm);
    assert_eq!(
        sha256(&registry.manifest("acme/big", "1.0.0").unwrap().0),
        ws.outputs()["digest"]
    );
}

/// An upload the registry takes in at ten bytes a second is cut (a window of two seconds
/// below the floor of 1 KiB/s) and tried again, and the push fails in bounded time naming it.
#[test]
fn an_upload_the_registry_takes_in_at_a_crawl_is_cut_and_retried() {
    let registry = Registry::start();
    let proxy = FaultProxy::start(registry.port, |_, method, _| match method {
        "PATCH" => Fault::Crawl,
        _ => Fault::Pass,
    });
    let ws = Workspace::new();
    ws.write("big.wasm", &big_wasm());
    let env = env_through(
        &ws,
        &proxy,
        &[
            ("WASM_OCI_HTTP_TIMEOUT", "2"),
            ("WASM_OCI_RETRY_INITIAL_DELAY", "0.05"),
            ("WASM_OCI_RETRY_MAX_ATTEMPTS", "2"),
        ],
    );
    let started = Instant::now();
    let (done, finished) = std::sync::mpsc::channel();
    let runner = ws.root();
    std::thread::spawn(move || {
        let _ = done.send(
            Command::new(BIN)
                .arg("action")
                .current_dir(runner)
                .env_clear()
                .envs(&env)
                .output(),
        );
    });
    let output = finished
        .recv_timeout(Duration::from_secs(90))
        .expect("the push ends within 90 s")
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    let error = stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        error.contains("the upload of ./big.wasm was too slow")
            && error.contains("(`WASM_OCI_HTTP_TIMEOUT`)")
            && error.contains("gave up after 2 attempts"),
        "{error}"
    );
    assert!(stdout.contains("failed (too slow); retrying"), "{stdout}");
    assert!(elapsed < Duration::from_secs(40), "{elapsed:?}");
    assert!(registry.tags("acme/big").is_empty());
}
