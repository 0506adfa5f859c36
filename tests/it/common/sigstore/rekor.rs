//! A Rekor v1 transparency log: `POST /api/v1/log/entries` takes a `dsse` v0.0.1 proposed entry
//! (the envelope as JSON text and the signer's certificate, base64 PEM), checks the envelope's
//! signature with that certificate, appends the canonical entry body as a leaf of an RFC 6962
//! Merkle tree, and answers `{UUID: {body, integratedTime, logID, logIndex, verification:
//! {signedEntryTimestamp, inclusionProof}}}`: the SET signs the canonical JSON of body,
//! integratedTime, logID and logIndex; the inclusion proof comes with a checkpoint, a signed note
//! (origin, size, base64 root; `— NAME base64(key hint || signature)`).

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sigstore_merkle::{hash_children, hash_leaf};
use sigstore_types::Sha256Hash;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem as _, Encode as _, EncodePem as _};

use super::http::{Request, Response, serve};
use super::keys::{Key, b64, unb64};

/// The log's name in its checkpoints.
pub const ORIGIN: &str = "rekor.sigstore.test - 2605736670972794746";

/// The running log.
pub struct Rekor {
    pub url: String,
    pub key: Arc<Key>,
    /// The canonical entry bodies, in log order.
    pub entries: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// RFC 6962 Merkle tree hash of `leaves` (already leaf-hashed).
fn root(leaves: &[Sha256Hash]) -> Sha256Hash {
    match leaves.len() {
        0 => Sha256Hash::new(Sha256::digest([]).into()),
        1 => leaves[0],
        n => {
            let k = split(n);
            hash_children(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two below `n`.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 2.1.1 audit path of leaf `m`, leaf-side first.
fn path(m: usize, leaves: &[Sha256Hash]) -> Vec<Sha256Hash> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(root(&leaves[..k]));
        p
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A DSSE envelope's signatures checked against `certificate_pem`'s key; `None` when one fails.
fn check_envelope(envelope: &Value, key: &VerifyingKey) -> Option<Vec<String>> {
    let payload_type = envelope["payloadType"].as_str()?;
    let payload = unb64(envelope["payload"].as_str()?)?;
    let mut pae = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&payload);
    let signatures = envelope["signatures"].as_array()?;
    if signatures.is_empty() {
        return None;
    }
    signatures
        .iter()
        .map(|s| {
            let text = s["sig"].as_str()?;
            let sig = DerSignature::from_bytes(&unb64(text)?).ok()?;
            key.verify(&pae, &sig).ok()?;
            Some(text.to_owned())
        })
        .collect()
}

impl Rekor {
    pub fn start() -> Self {
        let key = Arc::new(Key::generate());
        let entries = Arc::new(Mutex::new(Vec::new()));
        let (k, e) = (key.clone(), entries.clone());
        let url = serve(move |request: Request| {
            if request.method != "POST" || request.target != "/api/v1/log/entries" {
                return Response::error(404, "not found");
            }
            let Ok(proposed) = serde_json::from_slice::<Value>(&request.body) else {
                return Response::error(400, "entry is not JSON");
            };
            if proposed["kind"] != "dsse" || proposed["apiVersion"] != "0.0.1" {
                return Response::error(400, "only dsse 0.0.1 entries are accepted here");
            }
            let content = &proposed["spec"]["proposedContent"];
            let Some(envelope_text) = content["envelope"].as_str() else {
                return Response::error(400, "missing envelope");
            };
            let Ok(envelope) = serde_json::from_str::<Value>(envelope_text) else {
                return Response::error(400, "envelope is not JSON");
            };
            let certificate = content["verifiers"][0]
                .as_str()
                .and_then(unb64)
                .and_then(|pem| Certificate::from_pem(pem).ok());
            let Some(certificate) = certificate else {
                return Response::error(400, "verifier is not a PEM certificate");
            };
            let spki = certificate
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .unwrap();
            let Ok(key) = VerifyingKey::from_public_key_der(&spki) else {
                return Response::error(400, "verifier key is not P-256");
            };
            let Some(signatures) = check_envelope(&envelope, &key) else {
                return Response::error(400, "envelope signature does not verify");
            };
            let payload = unb64(envelope["payload"].as_str().unwrap()).unwrap();
            // The verifier as Rekor canonicalizes it: the certificate re-encoded as PEM.
            let verifier = b64(certificate
                .to_pem(x509_cert::der::pem::LineEnding::LF)
                .unwrap()
                .as_bytes());
            let signatures: Vec<String> = signatures
                .iter()
                .map(|sig| format!(r#"{{"signature":"{sig}","verifier":"{verifier}"}}"#))
                .collect();
            // RFC 8785: keys sorted, no whitespace.
            let body = format!(
                r#"{{"apiVersion":"0.0.1","kind":"dsse","spec":{{"envelopeHash":{{"algorithm":"sha256","value":"{}"}},"payloadHash":{{"algorithm":"sha256","value":"{}"}},"signatures":[{}]}}}}"#,
                hex::encode(Sha256::digest(envelope_text.as_bytes())),
                hex::encode(Sha256::digest(&payload)),
                signatures.join(",")
            );
            let mut log = e.lock().unwrap();
            log.push(body.clone().into_bytes());
            let leaves: Vec<Sha256Hash> = log.iter().map(|b| hash_leaf(b)).collect();
            let index = leaves.len() - 1;
            let tree_root = root(&leaves);
            let hashes: Vec<String> = path(index, &leaves).iter().map(|h| h.to_hex()).collect();
            let log_id = hex::encode(k.key_id());
            let integrated_time = now();
            let body_b64 = b64(body.as_bytes());
            let set_payload = format!(
                r#"{{"body":"{body_b64}","integratedTime":{integrated_time},"logID":"{log_id}","logIndex":{index}}}"#
            );
            let set = b64(&k.sign(set_payload.as_bytes()));
            let note = format!(
                "{ORIGIN}\n{}\n{}\n",
                leaves.len(),
                b64(tree_root.as_bytes())
            );
            let mut signature = k.key_id()[..4].to_vec();
            signature.extend(k.sign(note.as_bytes()));
            let checkpoint = format!("{note}\n\u{2014} rekor.sigstore.test {}\n", b64(&signature));
            let uuid = leaves[index].to_hex();
            Response::json(
                201,
                &json!({uuid: {
                    "body": body_b64,
                    "integratedTime": integrated_time,
                    "logID": log_id,
                    "logIndex": index,
                    "verification": {
                        "signedEntryTimestamp": set,
                        "inclusionProof": {
                            "checkpoint": checkpoint,
                            "hashes": hashes,
                            "logIndex": index,
                            "rootHash": tree_root.to_hex(),
                            "treeSize": leaves.len(),
                        },
                    },
                }}),
            )
        });
        Rekor { url, key, entries }
    }
}
