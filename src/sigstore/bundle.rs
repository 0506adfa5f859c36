//! The `signing-key` envelope as a Sigstore bundle v0.3: the same DSSE envelope, with the
//! public key named by a hint (base64 SHA-256 of its DER SubjectPublicKeyInfo, as cosign writes
//! it) instead of a certificate, so `cosign verify-attestation --key` users find it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};
use sigstore_bundle::{BundleV03, VerificationMaterialV03};
use sigstore_types::DsseEnvelope;
use sigstore_types::bundle::SignatureContent;

use crate::error::{Error, Result};

/// The bundle's JSON around `envelope` (DSSE JSON) signed by the key whose public half is
/// `spki_der`.
pub fn key_bundle(envelope: &[u8], spki_der: &[u8]) -> Result<Vec<u8>> {
    let bad =
        |e: &dyn std::fmt::Display| Error::Provenance(format!("cannot bundle the envelope: {e}"));
    let envelope: DsseEnvelope = serde_json::from_slice(envelope).map_err(|e| bad(&e))?;
    let bundle = BundleV03::new(
        VerificationMaterialV03::PublicKey {
            hint: BASE64.encode(Sha256::digest(spki_der)),
        },
        SignatureContent::DsseEnvelope(envelope),
    )
    .into_bundle();
    Ok(bundle.to_json().map_err(|e| bad(&e))?.into_bytes())
}
