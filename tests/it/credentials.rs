//! Credentials in the documented order against the real registry: docker's config file
//! (`auths`, `credHelpers`, `credsStore`, identity tokens), `DOCKER_CONFIG` before `HOME`, and
//! the bearer-token flow of a registry in `auth: token` mode. Every run is at trace level and
//! grepped for the secrets.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use common::leaks::{assert_no_secrets, loud, masked};
use common::token::TokenIssuer;
use common::*;

const USER: &str = "bot";
const PASSWORD: &str = "correct-horse-9f2";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn write_docker_config(dir: &Path, json: &serde_json::Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
}

fn home_docker(ws: &Workspace) -> std::path::PathBuf {
    ws.dir.path().join("home/.docker")
}

/// The action env for pushing multiply.wasm to `registry` with no credential inputs.
fn env_for(ws: &Workspace, host: &str, insecure: bool) -> BTreeMap<String, String> {
    let image = format!("{host}/acme/multiply");
    let mut env = loud(ws.multiply_env(
        &image,
        &[
            ("tags", "cred"),
            ("insecure", if insecure { "true" } else { "false" }),
        ],
    ));
    env.insert("WASM_OCI_RETRY_MAX_ELAPSED".into(), "3".into());
    env
}

/// A `docker-credential-<name>` script in `bin` that records what it was asked on stdin and
/// answers `answer` (or fails with `credentials not found` when `None`).
fn credential_helper(bin: &Path, name: &str, answer: Option<(&str, &str)>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin).unwrap();
    let record = bin.join(format!("{name}.asked"));
    let body = match answer {
        Some((user, secret)) => format!(
            "printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$url\""
        ),
        None => "echo 'credentials not found in native keychain'; exit 1".to_owned(),
    };
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nurl=$(cat)\nprintf '%s' \"$url\" > '{}'\n{body}\n",
        record.display()
    );
    let path = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn with_path(mut env: BTreeMap<String, String>, bin: &Path) -> BTreeMap<String, String> {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    env.insert("PATH".into(), path);
    env
}

#[test]
fn docker_config_auths_log_in() {
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let ws = Workspace::new();
    write_docker_config(
        &home_docker(&ws),
        &serde_json::json!({"auths": {registry.host(): {"auth": b64(&format!("{USER}:{PASSWORD}"))}}}),
    );
    let run = ws.run_action(&env_for(&ws, &registry.host(), true));
    assert!(run.success(), "{run:?}");
    assert_eq!(registry.image_tags("acme/multiply"), ["cred"]);
    assert!(
        run.stdout.contains("auths"),
        "the log says where the credentials came from: {run:?}"
    );
    assert!(masked(&run, PASSWORD), "{run:?}");
    assert_no_secrets(&run, &ws, &[PASSWORD, &b64(&format!("{USER}:{PASSWORD}"))]);
}

#[test]
fn docker_config_env_comes_before_home() {
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let ws = Workspace::new();
    write_docker_config(
        &home_docker(&ws),
        &serde_json::json!({"auths": {registry.host(): {"auth": b64("bot:wrong-password")}}}),
    );
    let config_dir = ws.root().join(".docker-config");
    write_docker_config(
        &config_dir,
        &serde_json::json!({"auths": {registry.host(): {"auth": b64(&format!("{USER}:{PASSWORD}"))}}}),
    );
    let mut env = env_for(&ws, &registry.host(), true);
    env.insert("DOCKER_CONFIG".into(), config_dir.display().to_string());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    assert_eq!(registry.image_tags("acme/multiply"), ["cred"]);
    assert_no_secrets(&run, &ws, &[PASSWORD, "wrong-password"]);
}

#[test]
fn wrong_credentials_in_the_docker_config_name_their_source() {
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let ws = Workspace::new();
    write_docker_config(
        &home_docker(&ws),
        &serde_json::json!({"auths": {registry.host(): {"auth": b64("bot:stale-password-77")}}}),
    );
    let run = ws.run_action(&env_for(&ws, &registry.host(), true));
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].contains("user `bot`"), "{}", errors[0]);
    assert!(errors[0].contains("config.json"), "{}", errors[0]);
    assert!(errors[0].contains("401"), "{}", errors[0]);
    assert!(
        !run.stdout.contains("retrying in"),
        "401 is not retried: {run:?}"
    );
    assert!(registry.tags("acme/multiply").is_empty());
    assert_no_secrets(&run, &ws, &["stale-password-77"]);
}

#[test]
fn cred_helpers_are_asked_as_docker_asks_them() {
    let registry = Registry::with_htpasswd(USER, "helper-secret-9");
    let ws = Workspace::new();
    let bin = ws.dir.path().join("bin");
    credential_helper(&bin, "wasmtest", Some((USER, "helper-secret-9")));
    write_docker_config(
        &home_docker(&ws),
        &serde_json::json!({"credHelpers": {registry.host(): "wasmtest"}}),
    );
    let run = ws.run_action(&with_path(env_for(&ws, &registry.host(), true), &bin));
    assert!(run.success(), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(bin.join("wasmtest.asked")).unwrap(),
        registry.host()
    );
    assert_eq!(registry.image_tags("acme/multiply"), ["cred"]);
    // Found late, masked the moment it was known.
    assert!(masked(&run, "helper-secret-9"), "{run:?}");
    assert_no_secrets(&run, &ws, &["helper-secret-9"]);
}

#[test]
fn creds_store_without_an_entry_falls_back_to_auths() {
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let ws = Workspace::new();
    let bin = ws.dir.path().join("bin");
    credential_helper(&bin, "emptystore", None);
    write_docker_config(
        &home_docker(&ws),
        &serde_json::json!({
            "credsStore": "emptystore",
            "auths": {registry.host(): {"auth": b64(&format!("{USER}:{PASSWORD}"))}},
        }),
    );
    let run = ws.run_action(&with_path(env_for(&ws, &registry.host(), true), &bin));
    assert!(run.success(), "{run:?}");
    assert!(
        bin.join("emptystore.asked").exists(),
        "the store was asked first"
    );
    assert_eq!(registry.image_tags("acme/multiply"), ["cred"]);
    assert_no_secrets(&run, &ws, &[PASSWORD]);
}

fn token_registry(issuer: &std::sync::Arc<TokenIssuer>) -> Registry {
    Registry::start_with_options(
        Auth::None,
        RegistryOptions {
            tls: None,
            token: Some(issuer.clone()),
            ..Default::default()
        },
    )
}

/// A JWT's first characters: `{"` in base64url. Minted tokens must never be printed.
const JWT_PREFIX: &str = "eyJ";

#[test]
fn token_auth_exchanges_basic_credentials_for_a_bearer_token() {
    let issuer = TokenIssuer::start(&[(USER, PASSWORD)], &[]);
    let registry = token_registry(&issuer);
    let ws = Workspace::new();
    let mut env = env_for(&ws, &registry.host(), true);
    env.insert("INPUT_USERNAME".into(), USER.into());
    env.insert("INPUT_PASSWORD".into(), PASSWORD.into());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    assert!(
        issuer.requests().iter().any(|r| r == "GET basic bot"),
        "{:?}",
        issuer.requests()
    );
    let (bytes, _) = registry.manifest("acme/multiply", "cred").unwrap();
    assert_eq!(sha256(&bytes), ws.outputs()["digest"]);
    assert_no_secrets(&run, &ws, &[PASSWORD, JWT_PREFIX]);

    // A large module goes out while it is hashed, with the bearer token issued for pushing.
    let big = module_with_data(16 << 20, &[]);
    ws.write("big.wasm", &big);
    env.insert("INPUT_PATH".into(), "big.wasm".into());
    env.insert(
        "INPUT_IMAGE".into(),
        format!("{}/acme/big", registry.host()),
    );
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    assert!(run.stdout.contains("while hashing it"), "{run:?}");
    assert_eq!(registry.blob("acme/big", &sha256(&big)), big);
    assert_no_secrets(&run, &ws, &[PASSWORD, JWT_PREFIX]);

    // And it is pulled back with a pull token.
    let image = format!("{}/acme/big:cred", registry.host());
    let run = ws.run_cli(
        &["pull", &image, "--insecure", "-o", "pulled.wasm"],
        &[
            ("WASM_OCI_USERNAME", USER),
            ("WASM_OCI_PASSWORD", PASSWORD),
            ("RUST_LOG", "trace"),
        ],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(std::fs::read(ws.root().join("pulled.wasm")).unwrap(), big);
    assert_no_secrets(&run, &ws, &[PASSWORD, JWT_PREFIX]);
}

/// Registries on object storage (Docker Hub, ECR, GAR) answer blob reads with a redirect. The
/// client follows it without the registry's credentials: they are not the storage's to see, and
/// a presigned URL that also gets an `Authorization` header is refused.
#[test]
fn blob_reads_redirected_to_object_storage_carry_no_credentials() {
    let issuer = TokenIssuer::start(&[(USER, PASSWORD)], &[]);
    let registry = Registry::start_with_options(
        Auth::None,
        RegistryOptions {
            token: Some(issuer.clone()),
            redirect: true,
            ..Default::default()
        },
    );
    let ws = Workspace::new();
    let wasm = module_with_data(1 << 20, &[]);
    ws.write("m.wasm", &wasm);
    let credentials = [
        ("WASM_OCI_USERNAME", USER),
        ("WASM_OCI_PASSWORD", PASSWORD),
        ("RUST_LOG", "trace"),
    ];
    let image = format!("{}/acme/stored", registry.host());
    let tagged = format!("{image}:v1");
    let push = ws.run_cli(&["push", "m.wasm", &tagged, "--insecure"], &credentials);
    assert!(push.success(), "{push:?}");
    let digest = push.stdout.trim().to_owned();
    assert_no_secrets(&push, &ws, &[PASSWORD, JWT_PREFIX]);

    let pinned = format!("{image}@{digest}");
    let pull = ws.run_cli(
        &["pull", &pinned, "--insecure", "-o", "pulled.wasm"],
        &credentials,
    );
    assert!(pull.success(), "{pull:?}");
    assert_eq!(std::fs::read(ws.root().join("pulled.wasm")).unwrap(), wasm);
    assert_no_secrets(&pull, &ws, &[PASSWORD, JWT_PREFIX]);
    let verify = ws.run_cli(
        // Pushed without an OIDC token: unsigned, accepted knowingly.
        &["verify", &pinned, "--insecure", "--require-signature=false"],
        &credentials,
    );
    assert!(verify.success(), "{verify:?}");
    assert_no_secrets(&verify, &ws, &[PASSWORD, JWT_PREFIX]);

    // The layer itself came from the storage, and nothing sent there carried credentials.
    let requests = registry.storage.as_ref().unwrap().requests();
    let layer = &sha256(&wasm)["sha256:".len()..];
    assert!(
        requests
            .iter()
            .any(|r| r.line.starts_with("GET ") && r.line.contains(layer)),
        "the layer was read from the storage: {requests:#?}\n{}",
        registry.log()
    );
    assert!(
        requests.iter().all(|r| r
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))),
        "headers are recorded: {requests:#?}"
    );
    let sent = requests
        .iter()
        .flat_map(|r| &r.headers)
        .filter(|(name, _)| name.to_ascii_lowercase().starts_with("authorization"))
        .collect::<Vec<_>>();
    assert!(sent.is_empty(), "{sent:?}");
}

#[test]
fn token_auth_takes_an_identity_token_as_a_refresh_token() {
    let issuer = TokenIssuer::start(&[], &[("identity-refresh-5150", USER)]);
    let registry = token_registry(&issuer);
    let ws = Workspace::new();
    write_docker_config(
        &home_docker(&ws),
        &serde_json::json!({"auths": {registry.host(): {"auth": b64("<token>:"), "identitytoken": "identity-refresh-5150"}}}),
    );
    let run = ws.run_action(&env_for(&ws, &registry.host(), true));
    assert!(run.success(), "{run:?}");
    assert!(
        issuer.requests().iter().any(|r| r == "POST refresh_token"),
        "{:?}",
        issuer.requests()
    );
    assert_eq!(registry.image_tags("acme/multiply"), ["cred"]);
    assert!(masked(&run, "identity-refresh-5150"), "{run:?}");
    assert_no_secrets(&run, &ws, &["identity-refresh-5150", JWT_PREFIX]);
}

#[test]
fn token_auth_refusal_fails_at_once_with_the_registrys_words() {
    let issuer = TokenIssuer::start(&[(USER, PASSWORD)], &[]);
    let registry = token_registry(&issuer);
    let ws = Workspace::new();
    let mut env = env_for(&ws, &registry.host(), true);
    env.insert("INPUT_USERNAME".into(), USER.into());
    env.insert("INPUT_PASSWORD".into(), "not-the-password-3".into());
    let run = ws.run_action(&env);
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].contains(&registry.host()), "{}", errors[0]);
    assert!(
        errors[0].contains("UNAUTHORIZED: bad credentials"),
        "{}",
        errors[0]
    );
    assert!(!run.stdout.contains("retrying in"), "{run:?}");
    assert_no_secrets(&run, &ws, &["not-the-password-3", JWT_PREFIX]);
}

#[test]
fn anonymous_against_a_protected_registry_says_what_to_give() {
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let ws = Workspace::new();
    let run = ws.run_action(&env_for(&ws, &registry.host(), true));
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].contains("requires credentials"), "{}", errors[0]);
    assert!(registry.tags("acme/multiply").is_empty());
}

#[test]
fn the_github_token_is_masked_first_and_used_only_for_ghcr() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let mut env = env_for(&ws, &registry.host(), true);
    env.insert("INPUT_GITHUB-TOKEN".into(), "ghs_fakeTokenValue123".into());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout
            .starts_with("::add-mask::ghs_fakeTokenValue123\n"),
        "{run:?}"
    );
    assert!(run.stdout.contains("no credentials (anonymous)"), "{run:?}");
    assert_no_secrets(&run, &ws, &["ghs_fakeTokenValue123"]);
}

#[test]
fn a_token_endpoint_that_answers_502_is_retried() {
    let issuer = TokenIssuer::start(&[(USER, PASSWORD)], &[]);
    issuer
        .bad_gateway
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let registry = token_registry(&issuer);
    let ws = Workspace::new();
    let mut env = env_for(&ws, &registry.host(), true);
    env.insert("INPUT_USERNAME".into(), USER.into());
    env.insert("INPUT_PASSWORD".into(), PASSWORD.into());
    env.insert("WASM_OCI_RETRY_INITIAL_DELAY".into(), "0.05".into());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}\n{:?}", issuer.requests());
    assert_eq!(issuer.requests().iter().filter(|r| *r == "502").count(), 2);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("502 Bad Gateway") && l.contains("retrying in")),
        "{run:?}"
    );
    assert_eq!(registry.image_tags("acme/multiply"), ["cred"]);
    assert_no_secrets(&run, &ws, &[PASSWORD, JWT_PREFIX]);
}

#[test]
fn cli_at_trace_level_never_prints_the_password() {
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let reference = format!("{}/acme/cli:v1", registry.host());
    let run = ws.run_cli(
        &[
            "push",
            "m.wasm",
            &reference,
            "--insecure",
            "--username",
            USER,
        ],
        &[
            ("WASM_OCI_PASSWORD", PASSWORD),
            ("RUST_LOG", "trace"),
            ("SOURCE_DATE_EPOCH", "0"),
        ],
    );
    assert!(run.success(), "{run:?}");
    assert!(
        run.stderr.lines().any(|l| l.starts_with("DEBUG")),
        "trace logging is on: {run:?}"
    );
    assert!(!run.all().contains(PASSWORD), "{run:?}");
    assert!(
        !run.all().contains(&b64(&format!("{USER}:{PASSWORD}"))),
        "{run:?}"
    );
    assert_eq!(registry.image_tags("acme/cli"), ["v1"]);
}
