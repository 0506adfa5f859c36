//! Attacks on `verify` by someone who can push to the repository in the registry but cannot
//! run the release workflow: each makes verify answer for an artifact that workflow did not
//! build, and each must fail, naming the check. The artifacts sit in the real registry, the
//! bundles are made through the Sigstore stand-ins, as in `verify_keyless`.

use crate::common;
use crate::verify_keyless::{
    REPO, SOURCE, attach_bundle, attest_from, failed, release_by, trust_config, verify_as_deploy,
    verify_summary,
};

use common::sigstore::{Job, Sigstore};
use common::*;

/// The release workflow of acme/multiply, as the deploy job names it.
const RELEASE_WORKFLOW: &str = "acme/multiply/.github/workflows/release.yml@refs/tags/v1.2.3";

/// A public repository's reusable workflow can be called from any repository: the job runs
/// in the caller's repository (its code, its commit) under the called workflow's name, so the
/// certificate's SAN names acme's release workflow while its source repository extension
/// names the caller. An attacker's repository calls it, attaches the bundle to an artifact of
/// its own build and annotates the artifact with its own source: a deploy job that names the
/// signer by `certificate-identity` (or a regexp) alone must still refuse it.
#[test]
fn acmes_release_workflow_called_from_another_repository_is_not_acmes_release() {
    let caller = "evil/multiply";
    let s = Sigstore::public_good_without_tsa(
        Job::tag_push(caller, "v1.2.3", COMMIT).calling(RELEASE_WORKFLOW),
    );
    let registry = Registry::start();
    let ws = Workspace::new();
    let (digest, manifest) = release_by(&registry, &ws, 1, caller);
    let bundle = attest_from(&s, &ws, &manifest, &format!("https://github.com/{caller}"));
    attach_bundle(&registry, &digest, &bundle);
    let identity = format!("https://github.com/{RELEASE_WORKFLOW}");
    let regexp = format!("^{}$", regex::escape(&identity));
    for policy in [
        ("certificate-identity", identity.as_str()),
        ("certificate-identity-regexp", regexp.as_str()),
    ] {
        let run = verify_as_deploy(&registry, &ws, &trust_config(&s), &digest, &[policy]);
        assert_eq!(
            failed(&ws, &run),
            ["certificate source", "signature"],
            "{policy:?}\n{}",
            verify_summary(&ws)
        );
        assert!(
            run.all().contains(&format!(
                "certificate source: expected source repository `https://github.com/acme/multiply`, found `https://github.com/{caller}`"
            )),
            "{run:?}"
        );
    }
}

/// The release workflow run in its own repository passes with the identity alone.
#[test]
fn the_release_workflow_in_its_own_repository_passes_with_the_identity_alone() {
    let s = Sigstore::public_good_without_tsa(Job::tag_push(REPO, "v1.2.3", COMMIT));
    let registry = Registry::start();
    let ws = Workspace::new();
    let (digest, manifest) = release_by(&registry, &ws, 1, REPO);
    attach_bundle(&registry, &digest, &attest_from(&s, &ws, &manifest, SOURCE));
    let identity = format!("https://github.com/{RELEASE_WORKFLOW}");
    let run = verify_as_deploy(
        &registry,
        &ws,
        &trust_config(&s),
        &digest,
        &[("certificate-identity", &identity)],
    );
    assert!(run.success(), "{run:?}\n{}", verify_summary(&ws));
    assert!(
        verify_summary(&ws).contains(&format!(
            "| certificate source | ✅ pass | source repository `{SOURCE}`"
        )),
        "{}",
        verify_summary(&ws)
    );
}

const CYCLONEDX: &str = "application/vnd.cyclonedx+json";

/// Attaches a referrer of `subject` in `REPO` as the push does (its one layer `layer` of
/// `media_type`), listed last in the fallback tag's index: the newest.
fn attach(registry: &Registry, subject: &str, artifact_type: &str, media_type: &str, layer: &[u8]) {
    use common::raw::*;
    use serde_json::json;
    let (subject_bytes, _) = registry.manifest(REPO, subject).expect("the subject");
    registry.put_blob(REPO, b"{}");
    registry.put_blob(REPO, layer);
    let referrer = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_CONFIG, "digest": sha256(b"{}"), "size": 2},
        "layers": [descriptor(media_type, layer)],
        "subject": descriptor(OCI_MANIFEST, &subject_bytes),
    }))
    .unwrap();
    registry.put_manifest(REPO, &sha256(&referrer), &referrer, OCI_MANIFEST);
    let tag = subject.replace(':', "-");
    let mut index: serde_json::Value = match registry.manifest(REPO, &tag) {
        Some((bytes, _)) => serde_json::from_slice(&bytes).unwrap(),
        None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    };
    let mut entry = descriptor(OCI_MANIFEST, &referrer);
    entry["artifactType"] = json!(artifact_type);
    index["manifests"].as_array_mut().unwrap().push(entry);
    registry.put_manifest(REPO, &tag, &serde_json::to_vec(&index).unwrap(), OCI_INDEX);
}

/// The SBOM the release attached, signed with its key, stays evidence when someone who can
/// push attaches another SBOM referrer after it (unsigned, or signed with their own key): the
/// newest referrer does not stand for all of them.
#[test]
fn a_later_sbom_referrer_does_not_hide_the_releases_signed_one() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let keys = tempfile::tempdir().unwrap();
    let (signing, public) = common::raw::p256_key(keys.path(), "release");
    let (attacker, _) = common::raw::p256_key(keys.path(), "attacker");
    std::fs::copy(&signing, ws.root().join("signing.pem")).unwrap();
    let image = format!("{}/{REPO}", registry.host());
    let run = ws.run_action(&ws.multiply_env(
        &image,
        &[
            ("insecure", "true"),
            ("tags", "1.0.0"),
            ("signing-key", "signing.pem"),
        ],
    ));
    assert!(run.success(), "{run:?}");
    let digest = ws.outputs()["digest"].clone();
    let statement = serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "multiply.wasm", "digest": {"sha256": &digest["sha256:".len()..]}}],
        "predicateType": "https://cyclonedx.org/bom",
        "predicate": {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []},
    }))
    .unwrap();
    let dsse = common::raw::DSSE;
    attach(
        &registry,
        &digest,
        CYCLONEDX,
        dsse,
        &common::raw::dsse_envelope(&statement, &signing),
    );
    let verify = || {
        ws.run_action(&ws.action_env(&[
            ("command", "verify"),
            ("image", &format!("{image}@{digest}")),
            ("insecure", "true"),
            ("expect-source", SOURCE),
            ("expect-revision", COMMIT),
            ("public-key", &public),
            ("require-sbom", "true"),
        ]))
    };
    let run = verify();
    assert!(run.success(), "{run:?}");
    let unsigned = br#"{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}"#;
    attach(&registry, &digest, CYCLONEDX, CYCLONEDX, unsigned);
    attach(
        &registry,
        &digest,
        CYCLONEDX,
        dsse,
        &common::raw::dsse_envelope(&statement, &attacker),
    );
    let run = verify();
    assert!(run.success(), "{run:?}");
    assert!(
        verify_summary(&ws).contains("| sbom signature | ✅ pass |"),
        "{}",
        verify_summary(&ws)
    );
}
