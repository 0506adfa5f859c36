//! Keyless signing in GitHub Actions: the job's OIDC token (audience `sigstore`) from the
//! runner, an ephemeral P-256 key, a Fulcio certificate binding the key to the workflow's
//! identity, the DSSE signature over the in-toto statement, a Rekor v1 `dsse` entry and/or an RFC
//! 3161 timestamp, all in one Sigstore bundle v0.3. The token and the key never leave this
//! module except to Fulcio; the token is masked the moment it arrives.

use std::time::Duration;

use base64::Engine as _;
use sigstore_bundle::BundleV03;
use sigstore_crypto::KeyPair;
use sigstore_fulcio::FulcioClient;
use sigstore_oidc::IdentityToken;
use sigstore_rekor::{DsseEntry, RekorClient};
use sigstore_tsa::TimestampClient;
use sigstore_types::bundle::KindVersion;
use sigstore_types::{DsseEnvelope, DsseSignature, KeyId, PayloadBytes};
use tracing::{debug, info};

use super::Services;
use crate::context::Env;
use crate::error::{Error, Result};
use crate::provenance::dsse::PAYLOAD_TYPE;
use crate::secret::Secret;

/// How long the token request may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The runner's OIDC token endpoint: present only under `permissions: id-token: write`.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `ACTIONS_ID_TOKEN_REQUEST_URL`.
    url: String,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, a bearer token.
    token: Secret,
}

impl TokenRequest {
    /// The endpoint from `ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN`, when both are set.
    pub fn from_env(env: &Env) -> Option<Self> {
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        Some(TokenRequest {
            url: get("ACTIONS_ID_TOKEN_REQUEST_URL")?.to_owned(),
            token: Secret::new(get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")?),
        })
    }

    /// Asks the runner for a token with audience `sigstore`:
    /// `GET $URL&audience=sigstore`, `Authorization: bearer $TOKEN`, answer `{"value": JWT}`.
    pub async fn request(&self) -> Result<Secret> {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{separator}audience=sigstore", self.url);
        let failed = |reason: String| Error::Signing {
            service: "the runner's OIDC token endpoint",
            url: self.url.split('?').next().unwrap_or_default().to_owned(),
            reason,
        };
        let response = reqwest::Client::new()
            .get(&url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("bearer {}", self.token.expose()),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(TOKEN_TIMEOUT)
            .send()
            .await
            .map_err(|e| failed(transport(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("refused the token request ({status})")));
        }
        let body: serde_json::Value = response.json().await.map_err(|e| {
            failed(format!(
                "answered something that is not JSON: {}",
                transport(&e)
            ))
        })?;
        let jwt = body["value"]
            .as_str()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| failed("answered without a token (`value`)".to_owned()))?;
        Ok(Secret::new(jwt))
    }
}

/// A transport error without its URL (the token endpoint's URL carries no secret, but keep the
/// message short).
fn transport(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// A keylessly signed provenance.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The bundle's JSON.
    pub bundle: Vec<u8>,
    /// The certificate's identity: the workflow that signed (`https://github.com/...@ref`).
    pub identity: String,
    /// The Rekor entry's log index, when the instance has a log.
    pub log_index: Option<u64>,
    /// Whether an RFC 3161 timestamp is in the bundle.
    pub timestamped: bool,
}

/// The workflow identity Fulcio puts in the certificate for a GitHub Actions token:
/// `https://github.com/` + `job_workflow_ref`; the token's `sub` for other issuers.
fn identity(jwt: &str) -> String {
    let claims = jwt
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .unwrap_or_default();
    match claims["job_workflow_ref"].as_str() {
        Some(r) => format!("https://github.com/{r}"),
        None => claims["sub"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Signs `statement` (in-toto JSON) keylessly with `services`, with the job's OIDC `token`.
pub async fn sign(statement: &[u8], services: &Services, token: &Secret) -> Result<Signed> {
    let fail = |service: &'static str, url: &str| {
        let url = url.to_owned();
        move |e: &dyn std::fmt::Display| Error::Signing {
            service,
            url: url.clone(),
            reason: e.to_string(),
        }
    };
    let fulcio_failed = fail("Fulcio", &services.fulcio);
    let identity_token = IdentityToken::from_jwt(token.expose())
        .map_err(|e| fulcio_failed(&format!("the job's OIDC token does not parse: {e}")))?;
    let key = KeyPair::generate_ecdsa_p256().map_err(|e| fulcio_failed(&e))?;

    let fulcio = FulcioClient::new(&services.fulcio).map_err(|e| fulcio_failed(&e))?;
    let certificate = fulcio
        .create_signing_certificate(&identity_token, &key)
        .await
        .map_err(|e| fulcio_failed(&e))?
        .leaf_certificate()
        .clone();
    let identity = identity(token.expose());
    info!("Fulcio issued a signing certificate for {identity}");

    let signature = key
        .sign(&crate::provenance::dsse::pae(PAYLOAD_TYPE, statement))
        .map_err(|e| fulcio_failed(&e))?;
    let envelope = DsseEnvelope::new(
        PAYLOAD_TYPE,
        PayloadBytes::new(statement.to_vec()),
        DsseSignature::new(signature.clone(), KeyId::default()),
    );
    let mut bundle = BundleV03::with_certificate_and_dsse(certificate.clone(), envelope.clone());

    let mut log_index = None;
    if let Some(url) = &services.rekor {
        let rekor_failed = fail("Rekor", url);
        let entry = DsseEntry::new(&envelope, &certificate).map_err(|e| rekor_failed(&e))?;
        let logged = RekorClient::new(url)
            .map_err(|e| rekor_failed(&e))?
            .create_dsse_entry(entry)
            .await
            .map_err(|e| rekor_failed(&e))?;
        let entry = logged
            .to_bundle_entry(KindVersion::DsseV001)
            .map_err(|e| rekor_failed(&e))?;
        let index = entry.log_index.get();
        info!("logged in Rekor {url} at index {index}");
        log_index = Some(index);
        bundle = bundle.with_tlog_entry(entry);
    }
    let timestamped = services.tsa.is_some();
    if let Some(url) = &services.tsa {
        let tsa_failed = fail("the timestamp authority", url);
        let timestamp = TimestampClient::new(url)
            .map_err(|e| tsa_failed(&e))?
            .timestamp_signature(&signature)
            .await
            .map_err(|e| tsa_failed(&e))?;
        debug!("timestamped by {url}");
        bundle = bundle.with_rfc3161_timestamp(timestamp);
    }
    let bundle = bundle
        .into_bundle()
        .to_json()
        .map_err(|e| fulcio_failed(&e))?
        .into_bytes();
    Ok(Signed {
        bundle,
        identity,
        log_index,
        timestamped,
    })
}
