//! DSSE envelopes (Dead Simple Signing Envelope, the in-toto signature wrapper): signing the
//! provenance statement with an ECDSA P-256 or Ed25519 key, and checking such an envelope
//! against a public key. Signatures cover the pre-authentication encoding (PAE), never the raw
//! payload; ECDSA signatures are ASN.1 DER over SHA-256 of the PAE (what `openssl dgst -sha256`
//! checks), Ed25519 signatures are over the PAE itself.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};

/// The payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The media type of a DSSE envelope as an OCI layer.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// What the payload is; [`PAYLOAD_TYPE`] here.
    pub payload_type: String,
    /// The payload, standard base64.
    pub payload: String,
    /// The signatures.
    pub signatures: Vec<Signature>,
}

/// One signature in an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Key hint; empty (verifiers are given the key).
    #[serde(default)]
    pub keyid: String,
    /// The signature, standard base64.
    pub sig: String,
}

/// Why an envelope does not check out.
#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    /// The bytes are not a DSSE envelope.
    #[error("the provenance is not a DSSE envelope: {0}")]
    NotAnEnvelope(String),
    /// The envelope carries something other than an in-toto statement.
    #[error("the envelope's payload type is `{0}`, not `application/vnd.in-toto+json`")]
    PayloadType(String),
    /// The public key cannot be used.
    #[error(
        "the public key is not an ECDSA P-256 or Ed25519 public key in PEM (`-----BEGIN PUBLIC KEY-----`)"
    )]
    PublicKey,
    /// No signature verifies with the key.
    #[error("no signature in the envelope verifies with the given public key")]
    NoValidSignature,
}

/// The DSSE pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A private key that signs envelopes. Its `Debug` never shows the key.
#[derive(Clone)]
pub enum SigningKey {
    /// ECDSA over P-256 with SHA-256.
    P256(p256::ecdsa::SigningKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SigningKey::P256(_) => "SigningKey::P256(***)",
            SigningKey::Ed25519(_) => "SigningKey::Ed25519(***)",
        })
    }
}

impl SigningKey {
    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, P-256 or Ed25519) or SEC1
    /// (`BEGIN EC PRIVATE KEY`, P-256). The error never quotes the key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let pem = pem.trim();
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P256(key));
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::Ed25519(key));
        }
        // `openssl ecparam -genkey` writes an `EC PARAMETERS` block before the key.
        if let Some(block) = pem_block(pem, "EC PRIVATE KEY")
            && let Ok(key) = p256::SecretKey::from_sec1_pem(block)
        {
            return Ok(SigningKey::P256(key.into()));
        }
        let what = if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            "is an encrypted key; give it without a passphrase (keep it in a secret instead)"
        } else if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            "is an RSA key; use an ECDSA P-256 or Ed25519 key"
        } else {
            "is not an ECDSA P-256 or Ed25519 private key in PKCS#8 or SEC1 PEM; make one with `openssl genpkey -algorithm ed25519`"
        };
        Err(what.to_owned())
    }

    /// The algorithm's name, for logs.
    pub fn algorithm(&self) -> &'static str {
        match self {
            SigningKey::P256(_) => "ECDSA P-256",
            SigningKey::Ed25519(_) => "Ed25519",
        }
    }

    /// The matching public key as SubjectPublicKeyInfo PEM.
    pub fn public_key_pem(&self) -> String {
        match self {
            SigningKey::P256(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
            SigningKey::Ed25519(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
        }
        .expect("a public key always encodes")
    }

    /// The matching public key as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        match self {
            SigningKey::P256(k) => k.verifying_key().to_public_key_der(),
            SigningKey::Ed25519(k) => k.verifying_key().to_public_key_der(),
        }
        .expect("a public key always encodes")
        .into_vec()
    }

    /// Signs `message`: DER ECDSA over SHA-256 (deterministic, RFC 6979), or Ed25519.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        match self {
            SigningKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            SigningKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }
}

/// The PEM block labelled `label` within `text`, if there is one.
fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(&text[start..stop])
}

/// Wraps `statement` (in-toto JSON) in a signed envelope; returns the envelope's JSON bytes.
pub fn sign(statement: &[u8], key: &SigningKey) -> Vec<u8> {
    let envelope = Envelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: BASE64.encode(statement),
        signatures: vec![Signature {
            keyid: String::new(),
            sig: BASE64.encode(key.sign(&pae(PAYLOAD_TYPE, statement))),
        }],
    };
    serde_json::to_vec(&envelope).expect("an envelope always serializes")
}

enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    fn from_pem(pem: &str) -> Result<Self, DsseError> {
        let pem = pem.trim();
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(PublicKey::P256(k));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(PublicKey::Ed25519(k));
        }
        Err(DsseError::PublicKey)
    }

    fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        match self {
            PublicKey::P256(k) => {
                p256::ecdsa::Signature::from_der(sig).is_ok_and(|s| k.verify(message, &s).is_ok())
            }
            PublicKey::Ed25519(k) => ed25519_dalek::Signature::from_slice(sig)
                .is_ok_and(|s| k.verify(message, &s).is_ok()),
        }
    }
}

/// Checks that `public_key_pem` is a key [`verify_dsse`] can use, so a bad key is refused
/// before anything is fetched.
pub fn check_public_key(public_key_pem: &str) -> Result<(), DsseError> {
    PublicKey::from_pem(public_key_pem).map(|_| ())
}

/// Checks a DSSE envelope against `public_key_pem` (SubjectPublicKeyInfo PEM, P-256 or
/// Ed25519) and returns the statement bytes it carries when one signature verifies.
pub fn verify_dsse(envelope: &[u8], public_key_pem: &str) -> Result<Vec<u8>, DsseError> {
    let key = PublicKey::from_pem(public_key_pem)?;
    let envelope: Envelope =
        serde_json::from_slice(envelope).map_err(|e| DsseError::NotAnEnvelope(e.to_string()))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(DsseError::PayloadType(envelope.payload_type));
    }
    let payload = BASE64
        .decode(&envelope.payload)
        .map_err(|e| DsseError::NotAnEnvelope(format!("payload is not base64: {e}")))?;
    let message = pae(&envelope.payload_type, &payload);
    let verified = envelope.signatures.iter().any(|s| {
        BASE64
            .decode(&s.sig)
            .is_ok_and(|sig| key.verifies(&message, &sig))
    });
    if verified {
        Ok(payload)
    } else {
        Err(DsseError::NoValidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test keys made with openssl for these tests only.
    const P256_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg4izgFDxJpZmkMy4y
lmaWM1ibdyQH3aPhQ9AxU71ZiLehRANCAATQ/7Hh7Gnvahx9Ib/wHBSPihGzHiZL
FnPQ621zKdM6N2kC7ZnJeMA1DqnNRoUYshQQ/tiZYACvaCjBKw1yuKXL
-----END PRIVATE KEY-----";

    // `openssl ecparam -genkey -name prime256v1`: SEC1, after an `EC PARAMETERS` block.
    const P256_SEC1: &str = "-----BEGIN EC PARAMETERS-----
BggqhkjOPQMBBw==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIDh365k1GfC6sEQPjwYAfmqGhUasLm5zkdP0fMiSY050oAoGCCqGSM49
AwEHoUQDQgAEDYC8UYaV599e08fyd+F6ZeUSUzxsaoKtiKTU7ljXxuG5als8+TIl
8kEPfEltV7wvmhh22d8ve93T+ifcPJaNnQ==
-----END EC PRIVATE KEY-----
";

    #[test]
    fn reads_pkcs8_and_sec1_pem() {
        assert!(matches!(
            SigningKey::from_pem(P256_PKCS8),
            Ok(SigningKey::P256(_))
        ));
        let sec1 = SigningKey::from_pem(P256_SEC1).unwrap();
        assert_eq!(sec1.algorithm(), "ECDSA P-256");
        let envelope = sign(b"{}", &sec1);
        assert_eq!(
            verify_dsse(&envelope, &sec1.public_key_pem()).unwrap(),
            b"{}"
        );
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----";
        assert!(SigningKey::from_pem(rsa).unwrap_err().contains("RSA"));
    }

    #[test]
    fn pae_is_the_spec_example() {
        // From the DSSE protocol description.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn sign_then_verify_round_trips_and_tampering_fails() {
        let ed = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        for key in [
            SigningKey::from_pem(P256_PKCS8).unwrap(),
            SigningKey::Ed25519(ed),
        ] {
            let statement = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
            let envelope = sign(statement, &key);
            let public = key.public_key_pem();
            assert_eq!(verify_dsse(&envelope, &public).unwrap(), statement);
            // Deterministic signatures: the same statement gives the same envelope.
            assert_eq!(sign(statement, &key), envelope);

            let mut env: Envelope = serde_json::from_slice(&envelope).unwrap();
            env.payload = BASE64.encode(br#"{"_type":"forged"}"#);
            let forged = serde_json::to_vec(&env).unwrap();
            assert!(matches!(
                verify_dsse(&forged, &public),
                Err(DsseError::NoValidSignature)
            ));
        }
    }

    #[test]
    fn a_wrong_key_or_garbage_is_refused() {
        let key = SigningKey::from_pem(P256_PKCS8).unwrap();
        let other = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[9; 32]));
        let envelope = sign(b"{}", &key);
        assert!(matches!(
            verify_dsse(&envelope, &other.public_key_pem()),
            Err(DsseError::NoValidSignature)
        ));
        assert!(matches!(
            verify_dsse(&envelope, "nope"),
            Err(DsseError::PublicKey)
        ));
        assert!(matches!(
            verify_dsse(b"{}", &key.public_key_pem()),
            Err(DsseError::NotAnEnvelope(_))
        ));
        let err = SigningKey::from_pem("not a key at all").unwrap_err();
        assert!(!err.contains("not a key at all"));
        assert!(format!("{key:?}").contains("***"));
    }
}
