//! Keyless signing: the provenance statement signed with a Fulcio certificate for the job's OIDC
//! identity, logged in Rekor and/or timestamped, packaged as a Sigstore bundle v0.3, attached as a
//! referrer and uploaded to GitHub's attestation store — all against the stand-ins in
//! tests/common/sigstore, reached through the client trust config a user would pass.

mod common;

use common::sigstore::{self, Job, Sigstore};
use common::{COMMIT, Workspace};

/// An OIDC token from the stand-in endpoint, fetched as the runner's API is asked.
fn token(sigstore: &Sigstore) -> String {
    let url = format!("{}&audience=sigstore", sigstore.tokens.request_url);
    let answer: serde_json::Value = reqwest::blocking::Client::new()
        .get(url)
        .header(
            "Authorization",
            format!("bearer {}", sigstore.tokens.request_token),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    answer["value"].as_str().unwrap().to_owned()
}

/// The stand-ins answer what a Sigstore client asks and their answers verify: sigstore-python
/// signs an attestation through them (Fulcio, a Rekor v1 `dsse` entry) and verifies the bundle
/// against the trust config, as the GitHub workflow's identity.
#[test]
fn stand_ins_serve_an_independent_client() {
    let sigstore =
        Sigstore::public_good_without_tsa(Job::tag_push("acme/multiply", "v1.2.3", COMMIT));
    let ws = Workspace::new();
    let artifact = ws.write("multiply.wasm", b"\0asm\x01\0\0\0");
    let predicate = ws.write("predicate.json", br#"{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://github.com/actions/runner"}}}"#);
    let bundle = ws.root().join("multiply.wasm.sigstore.json");
    let jwt = token(&sigstore);
    let sign = sigstore::python_sigstore(
        &sigstore,
        &[
            "attest",
            "--identity-token",
            &jwt,
            "--predicate-type",
            "https://slsa.dev/provenance/v1",
            "--predicate",
            predicate.to_str().unwrap(),
            "--bundle",
            bundle.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ],
    );
    assert!(
        sign.status.success(),
        "{}",
        String::from_utf8_lossy(&sign.stderr)
    );
    let verify = sigstore::python_sigstore(
        &sigstore,
        &[
            "verify",
            "github",
            "-v",
            "--cert-identity",
            &sigstore.identity(),
            "--repository",
            "acme/multiply",
            "--sha",
            COMMIT,
            "--ref",
            "refs/tags/v1.2.3",
            "--bundle",
            bundle.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ],
    );
    let log = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{log}");
    // A timestamp that does not verify is skipped with this debug line, not refused.
    assert!(!log.contains("Unable to verify Timestamp"), "{log}");
    assert!(
        log.contains("successfully verified inclusion proof"),
        "{log}"
    );
    let other = sigstore::python_sigstore(
        &sigstore,
        &[
            "verify",
            "github",
            "--repository",
            "acme/other",
            "--bundle",
            bundle.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ],
    );
    assert!(
        !other.status.success(),
        "another repository's identity must not verify"
    );
}
