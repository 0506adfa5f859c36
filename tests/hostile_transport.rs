//! A registry that misleads or floods the client: a token realm in plain HTTP behind an HTTPS
//! registry, endless error bodies and referrers listings, blobs that trickle or stall, and
//! thousands of listed referrers. The real registry where it can play the part (TLS, token
//! auth, a fallback index), in-process fakes for the rest.

mod common;

use std::collections::BTreeMap;
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
