//! The one transport to a registry: one login probe, one token for a push, a new token after a
//! 401, and the manifest digest asked for with a `HEAD` when the registry's answer to the `PUT`
//! names none. Against the real registry, through the fault proxy where an answer must be
//! changed.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::proxy::{Fault, FaultProxy};
use common::token::TokenIssuer;
use common::*;
use wasm_oci::artifact::Blob;
use wasm_oci::registry::remote::{Access, Connection, Remote};
use wasm_oci::registry::{ManifestRef, WriteTarget};

const USER: &str = "bot";
const PASSWORD: &str = "transport-password-31";

fn remote(host: &str, credentials: Option<(&str, &str)>) -> Remote {
    let mut env = wasm_oci::context::Env::new();
    env.insert("WASM_OCI_RETRY_INITIAL_DELAY".into(), "0.05".into());
    Remote::new(
        format!("{host}/acme/app").parse().unwrap(),
        &Connection {
            insecure: true,
            policy: wasm_oci::registry::retry::Policy::from_env(&env).unwrap(),
            given: credentials.map_or_else(Default::default, |(user, password)| {
                wasm_oci::registry::auth::Given::new(
                    Some(user.to_owned()),
                    Some(wasm_oci::secret::Secret::new(password)),
                    None,
                    host,
                )
                .unwrap()
            }),
            env,
            ..Default::default()
        },
    )
    .unwrap()
}

fn token_registry(issuer: &std::sync::Arc<TokenIssuer>) -> Registry {
    Registry::start_with_options(
        Auth::None,
        RegistryOptions {
            token: Some(issuer.clone()),
            ..Default::default()
        },
    )
}

/// A manifest of one small layer, its blobs stored through `remote`.
fn stored_blobs_manifest(remote: &Remote, runtime: &tokio::runtime::Runtime) -> Blob {
    let config = Blob::new("application/vnd.wasm.config.v0+json", b"{}".to_vec());
    let layer = Blob::new("application/wasm", b"\0asm\x01\0\0\0".to_vec());
    for blob in [&config, &layer] {
        runtime.block_on(remote.put_blob(blob)).unwrap();
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config.media_type, "digest": config.digest.to_string(), "size": 2},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest.to_string(), "size": 8}],
    });
    Blob::new(
        "application/vnd.oci.image.manifest.v1+json",
        serde_json::to_vec(&manifest).unwrap(),
    )
}

#[test]
fn a_push_login_asks_the_registry_once() {
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let proxy = FaultProxy::start(registry.port, |_, _, _| Fault::Pass);
    let remote = remote(&proxy.host(), Some((USER, PASSWORD)));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(remote.login(Access::Write)).unwrap();
    // One probe carries the credentials; the other requests only open the connections the
    // push's widest waves use, and carry none.
    let log = proxy.log();
    assert!(!log.is_empty() && log.len() <= 6, "{log:#?}");
    assert!(log.iter().all(|l| l.contains("GET /v2/ ")), "{log:#?}");
    let registry_log = registry.log();
    let probes = registry_log
        .lines()
        .filter(|l| l.contains("\"GET /v2/ HTTP/1.1\" 200 ") && l.contains("wasm-oci/"))
        .count();
    assert_eq!(probes, 1, "{registry_log}");
}

#[test]
fn a_push_with_token_auth_asks_for_one_token_and_a_new_one_after_a_401() {
    let issuer = TokenIssuer::start(&[(USER, PASSWORD)], &[]);
    let registry = token_registry(&issuer);
    // The first manifest put is refused as an expired token is, with the registry's challenge.
    let refused = AtomicBool::new(false);
    let challenge = format!(
        "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{}/token\",service=\"{}\"\r\n",
        issuer.port,
        common::token::SERVICE
    );
    let proxy = FaultProxy::start(registry.port, move |_, method, path| {
        if method == "PUT" && path.contains("/manifests/") && !refused.swap(true, Ordering::SeqCst)
        {
            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}"#;
            return Fault::AnswerWith(401, challenge.clone(), body.into());
        }
        Fault::Pass
    });
    let remote = remote(&proxy.host(), Some((USER, PASSWORD)));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(remote.login(Access::Write)).unwrap();
    // One token, for pushing, serves every request of the push.
    assert_eq!(issuer.requests(), ["GET basic bot"]);
    let manifest = stored_blobs_manifest(&remote, &runtime);
    assert_eq!(issuer.requests().len(), 1, "{:?}", issuer.requests());
    let tag = ManifestRef::Tag("v1".parse().unwrap());
    let digest = runtime
        .block_on(remote.put_manifest(&manifest, &tag))
        .unwrap();
    assert_eq!(digest, manifest.digest);
    assert_eq!(issuer.requests(), ["GET basic bot", "GET basic bot"]);
    assert_eq!(registry.image_tags("acme/app"), ["v1"]);
}

#[test]
fn an_anonymous_session_sends_no_probe_and_asks_for_one_token_at_the_first_401() {
    let issuer = TokenIssuer::start(&[(USER, PASSWORD)], &[]);
    issuer.anonymous_pull.store(true, Ordering::SeqCst);
    let registry = token_registry(&issuer);
    let proxy = FaultProxy::start(registry.port, |_, _, _| Fault::Pass);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Something to read, pushed with credentials.
    let pusher = remote(&proxy.host(), Some((USER, PASSWORD)));
    runtime.block_on(pusher.login(Access::Write)).unwrap();
    let manifest = stored_blobs_manifest(&pusher, &runtime);
    let tag = ManifestRef::Tag("v1".parse().unwrap());
    runtime
        .block_on(pusher.put_manifest(&manifest, &tag))
        .unwrap();
    let (pushed, asked) = (proxy.log().len(), issuer.requests().len());

    let reader = remote(&proxy.host(), None);
    runtime.block_on(reader.login_lazily(Access::Read)).unwrap();
    // Four reads at once: each meets the registry's 401 first, one asks for a token, and each
    // is sent again with it.
    let reads = runtime.block_on(futures_util::future::join_all(
        (0..4).map(|_| wasm_oci::registry::ReadTarget::get_manifest(&reader, &tag)),
    ));
    for read in reads {
        assert_eq!(read.unwrap().expect("found").digest, manifest.digest);
    }
    assert_eq!(issuer.requests()[asked..], ["GET anonymous"]);
    let log = proxy.log()[pushed..].to_vec();
    assert!(!log.iter().any(|l| l.contains("GET /v2/ ")), "{log:#?}");
    assert_eq!(log.len(), 8, "four reads, each twice: {log:#?}");
}

#[test]
fn an_anonymous_push_to_a_token_registry_is_refused_at_its_first_request() {
    let issuer = TokenIssuer::start(&[(USER, PASSWORD)], &[]);
    issuer.anonymous_pull.store(true, Ordering::SeqCst);
    let registry = token_registry(&issuer);
    let remote = remote(&registry.host(), None);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(remote.login_lazily(Access::Write))
        .unwrap();
    let blob = Blob::new("application/wasm", b"\0asm\x01\0\0\0".to_vec());
    let error = runtime.block_on(remote.put_blob(&blob)).unwrap_err();
    let text = wasm_oci::error::error_chain(&error);
    assert!(text.contains("requires credentials"), "{text}");
    assert_eq!(registry.upload_count(), 0);
}

#[test]
fn a_manifest_put_answer_naming_no_digest_is_confirmed_by_a_head() {
    let registry = Registry::start();
    let stored = AtomicBool::new(false);
    // The second put of the manifest is answered 201 with neither a digest nor a location.
    let proxy = FaultProxy::start(registry.port, move |_, method, path| {
        if method == "PUT" && path.contains("/manifests/") && stored.swap(true, Ordering::SeqCst) {
            return Fault::Answer(201, String::new());
        }
        Fault::Pass
    });
    let remote = remote(&proxy.host(), None);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(remote.login(Access::Write)).unwrap();
    let manifest = stored_blobs_manifest(&remote, &runtime);
    let tag = ManifestRef::Tag("v1".parse().unwrap());
    for _ in 0..2 {
        let digest = runtime
            .block_on(remote.put_manifest(&manifest, &tag))
            .unwrap();
        assert_eq!(digest, manifest.digest);
    }
    let log = proxy.log();
    let heads: Vec<_> = log
        .iter()
        .filter(|l| l.contains("HEAD /v2/acme/app/manifests/v1"))
        .collect();
    assert_eq!(heads.len(), 1, "{log:#?}");
}
