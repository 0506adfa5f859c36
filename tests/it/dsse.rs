//! DSSE verification against signatures made by `openssl`, independent of our code: ECDSA
//! P-256 (DER, over SHA-256 of the PAE) and Ed25519 (over the PAE), and what must not verify.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use wasm_oci::provenance::dsse::verify_dsse;

const TYPE: &str = "application/vnd.in-toto+json";

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (`.ci/run` installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (private key path, public key PEM) for `algorithm` (`ec` or `ed25519`).
fn key(dir: &Path, algorithm: &str) -> (String, String) {
    let private = dir.join(format!("{algorithm}.pem")).display().to_string();
    let public = dir.join(format!("{algorithm}.pub")).display().to_string();
    match algorithm {
        "ec" => openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &private,
        ]),
        _ => openssl(&["genpkey", "-algorithm", "ed25519", "-out", &private]),
    }
    openssl(&["pkey", "-in", &private, "-pubout", "-out", &public]);
    (private, std::fs::read_to_string(public).unwrap())
}

fn sign(dir: &Path, private: &str, algorithm: &str, payload: &[u8]) -> Vec<u8> {
    let mut pae = format!("DSSEv1 {} {TYPE} {} ", TYPE.len(), payload.len()).into_bytes();
    pae.extend_from_slice(payload);
    let pae_file = dir.join("pae").display().to_string();
    let sig_file = dir.join("sig").display().to_string();
    std::fs::write(&pae_file, &pae).unwrap();
    match algorithm {
        "ec" => openssl(&[
            "dgst", "-sha256", "-sign", private, "-out", &sig_file, &pae_file,
        ]),
        _ => openssl(&[
            "pkeyutl", "-sign", "-rawin", "-inkey", private, "-in", &pae_file, "-out", &sig_file,
        ]),
    }
    std::fs::read(sig_file).unwrap()
}

fn envelope(payload: &[u8], sig: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::to_vec(&serde_json::json!({
        "payloadType": TYPE,
        "payload": b64.encode(payload),
        "signatures": [{"keyid": "", "sig": b64.encode(sig)}],
    }))
    .unwrap()
}

#[test]
fn openssl_signatures_verify_and_tampering_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let payload = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
    for algorithm in ["ec", "ed25519"] {
        let (private, public) = key(dir.path(), algorithm);
        let sig = sign(dir.path(), &private, algorithm, payload);
        assert_eq!(
            verify_dsse(&envelope(payload, &sig), &public).unwrap(),
            payload,
            "{algorithm}"
        );

        let changed = br#"{"_type":"https://in-toto.io/Statement/v2"}"#;
        let err = verify_dsse(&envelope(changed, &sig), &public)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no signature in the envelope verifies"),
            "{algorithm}: {err}"
        );

        let (other_private, _) = key(other_dir.path(), algorithm);
        let other_sig = sign(dir.path(), &other_private, algorithm, payload);
        let err = verify_dsse(&envelope(payload, &other_sig), &public)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no signature in the envelope verifies"),
            "{algorithm}: {err}"
        );
    }
}
