//! The stand-ins' P-256 keys: each service (the token issuer, Fulcio's CA, the CT log, Rekor,
//! the timestamp authority) holds one, made fresh per run.

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::EncodePublicKey as _;
use sha2::{Digest as _, Sha256};

/// A P-256 key pair.
pub struct Key {
    pub signing: SigningKey,
}

impl Key {
    pub fn generate() -> Self {
        loop {
            let bytes: [u8; 32] = rand::random();
            if let Ok(signing) = SigningKey::from_slice(&bytes) {
                return Key { signing };
            }
        }
    }

    pub fn verifying(&self) -> VerifyingKey {
        *self.signing.verifying_key()
    }

    /// The public key as DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> Vec<u8> {
        self.verifying().to_public_key_der().unwrap().into_vec()
    }

    /// Sigstore's key id: SHA-256 of the DER `SubjectPublicKeyInfo` (RFC 6962 log id).
    pub fn key_id(&self) -> [u8; 32] {
        Sha256::digest(self.spki_der()).into()
    }

    /// ECDSA-SHA256 over `data`, DER-encoded.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        let signature: DerSignature = self.signing.sign(data);
        signature.as_bytes().to_vec()
    }
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
