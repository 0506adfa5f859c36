//! TLS against the real registry serving a certificate from a test CA: `ca-file` makes it
//! trusted, nothing else does, and a failure names the registry and `ca-file`.

use crate::common;

use common::leaks::{assert_no_secrets, loud};
use common::tls::{make_ca, server_cert};
use common::*;

fn tls_registry(dir: &std::path::Path) -> (Registry, tls::ServerCert) {
    let cert = server_cert(dir, "test-ca");
    let registry = Registry::start_with_options(
        Auth::Htpasswd {
            user: "bot".into(),
            password: "tls-password-1".into(),
        },
        RegistryOptions {
            tls: Some(server_cert_copy(&cert)),
            token: None,
            ..Default::default()
        },
    );
    (registry, cert)
}

fn server_cert_copy(c: &tls::ServerCert) -> tls::ServerCert {
    tls::ServerCert {
        ca: c.ca.clone(),
        ca_pem: c.ca_pem.clone(),
        cert: c.cert.clone(),
        key: c.key.clone(),
    }
}

fn push(ws: &Workspace, registry: &Registry, extra: &[(&str, &str)]) -> Run {
    let image = format!("{}/acme/multiply", registry.host());
    let inputs = [
        &[
            ("tags", "tls"),
            ("username", "bot"),
            ("password", "tls-password-1"),
        ][..],
        extra,
    ]
    .concat();
    let mut env = loud(ws.multiply_env(&image, &inputs));
    env.insert("WASM_OCI_RETRY_MAX_ELAPSED".into(), "3".into());
    ws.run_action(&env)
}

#[test]
fn ca_file_makes_a_private_ca_trusted() {
    let ws = Workspace::new();
    let (registry, cert) = tls_registry(ws.dir.path());
    let ca = cert.ca.to_str().unwrap();
    let run = push(&ws, &registry, &[("ca-file", ca)]);
    assert!(run.success(), "{run:?}");
    let digest = &ws.outputs()["digest"];
    let (bytes, _) = registry
        .manifest("acme/multiply", "tls")
        .expect("tagged over TLS");
    assert_eq!(&sha256(&bytes), digest);
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    assert_eq!(registry.blob("acme/multiply", &sha256(&wasm)), wasm);
    assert_no_secrets(&run, &ws, &["tls-password-1"]);

    // A large module goes out over TLS while it is hashed, with the same credentials.
    let big = module_with_data(16 << 20, &[]);
    ws.write("big.wasm", &big);
    let run = push(&ws, &registry, &[("ca-file", ca), ("path", "big.wasm")]);
    assert!(run.success(), "{run:?}");
    assert!(run.stdout.contains("while hashing it"), "{run:?}");
    assert_eq!(registry.blob("acme/multiply", &sha256(&big)), big);
    assert_no_secrets(&run, &ws, &["tls-password-1"]);

    // The registry offers HTTP/2 over TLS, and the pushes took it.
    let log = registry.log();
    let requests: Vec<&str> = log.lines().filter(|l| l.contains("\"PUT /v2/")).collect();
    assert!(!requests.is_empty(), "{log}");
    assert!(
        requests.iter().all(|l| l.contains(" HTTP/2.0\"")),
        "{requests:#?}"
    );
}

#[test]
fn without_ca_file_the_certificate_is_refused_and_named() {
    let ws = Workspace::new();
    let (registry, _cert) = tls_registry(ws.dir.path());
    let started = std::time::Instant::now();
    let run = push(&ws, &registry, &[]);
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].contains(&registry.host()), "{}", errors[0]);
    assert!(errors[0].contains("`ca-file`"), "{}", errors[0]);
    assert!(
        errors[0].contains("title=Registry TLS error"),
        "{}",
        errors[0]
    );
    // A certificate problem is not retried.
    assert!(!run.stdout.contains("retrying in"), "{run:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(registry.tags("acme/multiply").is_empty());
    assert_no_secrets(&run, &ws, &["tls-password-1"]);
}

#[test]
fn another_ca_is_not_enough() {
    let ws = Workspace::new();
    let (registry, _cert) = tls_registry(ws.dir.path());
    let other = ws.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (other_ca, _) = make_ca(&other, "other-ca");
    let run = push(&ws, &registry, &[("ca-file", other_ca.to_str().unwrap())]);
    assert!(!run.success(), "{run:?}");
    assert_eq!(run.error_lines().len(), 1, "{run:?}");
    assert!(
        run.error_lines()[0].contains("cannot verify the TLS certificate"),
        "{run:?}"
    );
    assert!(registry.tags("acme/multiply").is_empty());
}

#[test]
fn insecure_means_plain_http_and_never_skips_certificate_checks() {
    let ws = Workspace::new();
    let (registry, _cert) = tls_registry(ws.dir.path());
    // Plain HTTP to a TLS-only registry fails: `insecure` does not turn certificate checks off.
    let run = push(&ws, &registry, &[("insecure", "true")]);
    assert!(!run.success(), "{run:?}");
    assert_eq!(run.error_lines().len(), 1, "{run:?}");
    assert!(registry.tags("acme/multiply").is_empty());
    assert_no_secrets(&run, &ws, &["tls-password-1"]);
}
