//! A remote OCI distribution registry, through oci-client. Blobs stream from disk in one
//! monolithic PUT (the digest is known from validation), and every digest the registry reports
//! is compared with the one computed here. Every operation goes through the retry policy
//! ([`super::retry`]); foreign errors are classified and mapped in this file only
//! ([`map_oci_error`], [`classify`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::TryStreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use tokio_util::io::ReaderStream;

use super::auth::{self, Credential, Given, Resolved};
use super::retry::{Failure, Policy, Retry};
use super::{ManifestRef, Target};
use crate::artifact::{Blob, Descriptor};
use crate::context::Env;
use crate::error::{Error, Result};
use crate::reference::{Digest, ImageName};
use crate::secret::Secret;

/// How to reach and authenticate to a registry.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Allow plain HTTP (and only that: certificates are still checked on HTTPS).
    pub insecure: bool,
    /// A PEM file with extra CA certificates.
    pub ca_file: Option<PathBuf>,
    /// Basic credentials from the `username` and `password` inputs.
    pub credentials: Option<(String, Secret)>,
    /// A user name given without a password (ghcr.io then takes `github_token`).
    pub username: Option<String>,
    /// The `github-token` input, used for ghcr.io when nothing else is given.
    pub github_token: Option<Secret>,
    /// The environment: docker config locations, `PATH` for credential helpers,
    /// `GITHUB_ACTOR`, and the `WASM_OCI_RETRY_*` bounds.
    pub env: Env,
}

/// A repository in a remote registry.
pub struct Remote {
    client: Client,
    image: ImageName,
    auth: Mutex<RegistryAuth>,
    resolved: Resolved,
    policy: Policy,
    /// A bare HTTP client (same TLS trust, no credentials) for the token exchange and for
    /// reading `Retry-After`, which oci-client does not expose.
    http: reqwest::Client,
    scheme: &'static str,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

/// What kind of operation failed, for deciding whether to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// A manifest PUT: a `BLOB_UNKNOWN` there means the registry has not caught up yet.
    PutManifest,
    /// Anything else.
    Other,
}

impl Remote {
    /// A client for `image`'s repository. Finds the credentials (see [`auth`]).
    pub fn new(image: ImageName, connection: &Connection) -> Result<Self> {
        let policy = Policy::from_env(&connection.env)?;
        let mut extra_root_certificates = Vec::new();
        let mut http = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.read_timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("wasm-oci/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &connection.ca_file {
            let data = std::fs::read(ca).map_err(|e| Error::io("read", ca, e))?;
            let not_pem = || {
                Error::input(
                    "ca-file",
                    format!("`{}` holds no PEM certificate", ca.display()),
                )
            };
            if !String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
                return Err(not_pem());
            }
            let certs = reqwest::Certificate::from_pem_bundle(&data).map_err(|_| not_pem())?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let config = ClientConfig {
            protocol: if connection.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            use_monolithic_push: true,
            extra_root_certificates,
            connect_timeout: Some(policy.connect_timeout),
            read_timeout: Some(policy.read_timeout),
            user_agent: concat!("wasm-oci/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let bad_ca = |e: String| {
            Error::input(
                "ca-file",
                format!(
                    "`{}` cannot be used: {e}",
                    connection
                        .ca_file
                        .as_deref()
                        .unwrap_or(Path::new(""))
                        .display()
                ),
            )
        };
        let client = Client::try_from(config).map_err(|e| bad_ca(e.to_string()))?;
        let http = http.build().map_err(|e| bad_ca(e.to_string()))?;

        let given = Given {
            username: connection
                .credentials
                .as_ref()
                .map(|(u, _)| u.clone())
                .or_else(|| connection.username.clone()),
            password: connection.credentials.as_ref().map(|(_, p)| p.clone()),
            github_token: connection.github_token.clone(),
        };
        let resolved = auth::resolve(image.registry(), &given, &connection.env)?;
        tracing::info!("credentials for {}: {}", image.registry(), resolved.source);
        let auth = match &resolved.credential {
            Credential::Anonymous => RegistryAuth::Anonymous,
            Credential::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.expose().to_owned())
            }
            // Exchanged for an access token in `login`.
            Credential::IdentityToken(_) => RegistryAuth::Anonymous,
        };
        Ok(Remote {
            client,
            image,
            auth: Mutex::new(auth),
            resolved,
            policy,
            http,
            scheme: if connection.insecure { "http" } else { "https" },
        })
    }

    /// Authenticates for pushing, so bad credentials fail before any upload. An identity
    /// token is first exchanged for an access token.
    pub async fn login(&self) -> Result<()> {
        if let Credential::IdentityToken(refresh) = &self.resolved.credential {
            let access = self
                .policy
                .run("the identity token exchange", || {
                    self.exchange_identity_token(refresh)
                })
                .await?;
            *self.auth.lock().expect("auth") = RegistryAuth::Bearer(access.expose().to_owned());
        }
        let reference = self.reference_for(&ManifestRef::Tag("latest".parse().expect("valid")));
        let auth = self.registry_auth();
        self.retrying("authentication", Op::Other, || {
            self.client.auth(&reference, &auth, RegistryOperation::Push)
        })
        .await?;
        Ok(())
    }

    fn registry_auth(&self) -> RegistryAuth {
        self.auth.lock().expect("auth").clone()
    }

    /// Docker's identity-token flow: the token is an OAuth2 refresh token, posted to the realm
    /// the registry's `WWW-Authenticate: Bearer` challenge names, for an access token scoped to
    /// this repository.
    async fn exchange_identity_token(&self, refresh: &Secret) -> Result<Secret, Failure> {
        let registry = self.image.registry();
        let url = format!("{}://{registry}/v2/", self.scheme);
        let challenge = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        let header = challenge
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let params = parse_bearer_challenge(&header).ok_or_else(|| {
            Failure::from(Error::Credentials {
                source_name: format!("the identity token from {}", self.resolved.source),
                reason: format!(
                    "cannot be used: registry {registry} asks for no bearer token (WWW-Authenticate: `{header}`)"
                ),
            })
        })?;
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let scope = format!("repository:{}:pull,push", self.image.repository());
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh.expose().to_owned()),
            ("client_id", "wasm-oci".to_owned()),
            ("scope", scope),
        ];
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
            form.push(("service", service.clone()));
        }
        let response = self
            .http
            .post(&realm)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        let status = response.status();
        if !status.is_success() {
            let retry = retryable_status(status.as_u16());
            let body = response.text().await.unwrap_or_default();
            let error =
                if status.as_u16() == 401 || status.as_u16() == 403 || status.as_u16() == 400 {
                    self.unauthorized(status.as_u16(), envelope_detail(&body).unwrap_or_default())
                } else {
                    Error::Registry {
                        registry: registry.to_owned(),
                        operation: "the identity token exchange".to_owned(),
                        reason: format!("HTTP {status}"),
                    }
                };
            return Err(Failure { error, retry });
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: Option<String>,
            token: Option<String>,
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        answer
            .access_token
            .or(answer.token)
            .map(Secret::new)
            .ok_or_else(|| {
                Failure::from(Error::Registry {
                    registry: registry.to_owned(),
                    operation: "the identity token exchange".to_owned(),
                    reason: "the token endpoint answered without an access token".to_owned(),
                })
            })
    }

    fn reference_for(&self, r: &ManifestRef) -> Reference {
        match r {
            ManifestRef::Digest(d) => self.image.with_digest(d),
            ManifestRef::Tag(t) => self.image.with_tag(t),
        }
    }

    fn blob_reference(&self, digest: &Digest) -> Reference {
        self.image.with_digest(digest)
    }

    fn map(&self, e: OciDistributionError, operation: &str) -> Error {
        map_error(e, &self.context(operation))
    }

    fn context<'a>(&'a self, operation: &'a str) -> ErrorContext<'a> {
        ErrorContext {
            registry: self.image.registry(),
            user: self.resolved.username(),
            credential_source: &self.resolved.source,
            operation,
        }
    }

    fn unauthorized(&self, status: u16, detail: String) -> Error {
        Error::Unauthorized {
            registry: self.image.registry().to_owned(),
            user: self.resolved.username().map(str::to_owned),
            status,
            detail,
            credential_source: self.resolved.source.clone(),
        }
    }

    fn transport_failure(&self, e: &reqwest::Error) -> Failure {
        let error = transport_error(e, self.image.registry());
        let retry = match &error {
            Error::Tls { .. } => None,
            _ => Some(Retry {
                reason: transport_reason(e),
                after: None,
            }),
        };
        Failure { error, retry }
    }

    /// A failed attempt in our terms, with the verdict on retrying it.
    async fn failure(&self, e: OciDistributionError, operation: &str, op: Op) -> Failure {
        let mut retry = classify(&e, op);
        if let Some(r) = &mut retry {
            if r.reason.contains("429") {
                r.after = self.retry_after(&e).await;
            }
        }
        Failure {
            error: self.map(e, operation),
            retry,
        }
    }

    /// The `Retry-After` a throttling registry sends, read by asking the throttled URL again
    /// without credentials (oci-client drops response headers). Seconds only.
    async fn retry_after(&self, e: &OciDistributionError) -> Option<Duration> {
        let url = match e {
            OciDistributionError::ServerError { url, .. }
            | OciDistributionError::RegistryError { url, .. } => url.clone(),
            OciDistributionError::RequestError(e) => e.url()?.to_string(),
            _ => return None,
        };
        let response = self.http.head(&url).send().await.ok()?;
        let value = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)?
            .to_str()
            .ok()?;
        value.trim().parse::<u64>().ok().map(Duration::from_secs)
    }

    /// Runs `op` under the retry policy.
    async fn retrying<T, F, Fut>(&self, operation: &str, kind: Op, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        self.policy
            .run(operation, || {
                let attempt = op();
                async move {
                    match attempt.await {
                        Ok(v) => Ok(v),
                        Err(e) => Err(self.failure(e, operation, kind).await),
                    }
                }
            })
            .await
    }
}

/// `realm="…",service="…",scope="…"` of a `Bearer` challenge.
fn parse_bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| header.trim().strip_prefix("bearer "))?;
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        params.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    params.iter().any(|(k, _)| k == "realm").then_some(params)
}

/// Whether an HTTP status is worth another attempt.
fn retryable_status(code: u16) -> Option<Retry> {
    matches!(code, 408 | 429 | 500..=599).then(|| Retry {
        reason: format!("HTTP {code}"),
        after: None,
    })
}

/// Whether a failure is worth another attempt: connection errors, 408, 429, 5xx, and a
/// `BLOB_UNKNOWN` answer to a manifest put (the registry has not caught up with the blobs).
fn classify(e: &OciDistributionError, op: Op) -> Option<Retry> {
    let by_codes = |codes: &[&OciErrorCode]| -> Option<Retry> {
        for code in codes {
            match code {
                OciErrorCode::Toomanyrequests => {
                    return Some(Retry {
                        reason: "HTTP 429 TOOMANYREQUESTS".to_owned(),
                        after: None,
                    });
                }
                OciErrorCode::BlobUnknown | OciErrorCode::ManifestBlobUnknown
                    if op == Op::PutManifest =>
                {
                    return Some(Retry {
                        reason: "the registry does not see the uploaded blobs yet (BLOB_UNKNOWN)"
                            .to_owned(),
                        after: None,
                    });
                }
                _ => {}
            }
        }
        None
    };
    match e {
        OciDistributionError::RequestError(re) => match re.status() {
            Some(status) => retryable_status(status.as_u16()),
            None if re.is_builder() || is_tls(re) => None,
            None => Some(Retry {
                reason: transport_reason(re),
                after: None,
            }),
        },
        OciDistributionError::ServerError { code, message, .. } => {
            retryable_status(*code).or_else(|| {
                let envelope: OciEnvelope = serde_json::from_str(message).ok()?;
                by_codes(&envelope.errors.iter().map(|e| &e.code).collect::<Vec<_>>())
            })
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            by_codes(&envelope.errors.iter().map(|e| &e.code).collect::<Vec<_>>())
        }
        _ => None,
    }
}

/// What an error message needs to know besides the error.
struct ErrorContext<'a> {
    registry: &'a str,
    user: Option<&'a str>,
    credential_source: &'a str,
    operation: &'a str,
}

/// Maps oci-client's errors to ours: the one place that knows their shapes.
pub fn map_oci_error(
    e: OciDistributionError,
    registry: &str,
    user: Option<&str>,
    operation: &str,
) -> Error {
    let source = if user.is_some() {
        "the given credentials"
    } else {
        "no credentials (anonymous)"
    };
    map_error(
        e,
        &ErrorContext {
            registry,
            user,
            credential_source: source,
            operation,
        },
    )
}

fn map_error(e: OciDistributionError, cx: &ErrorContext<'_>) -> Error {
    let registry = cx.registry.to_owned();
    let unauthorized = |status: u16, detail: String| Error::Unauthorized {
        registry: cx.registry.to_owned(),
        user: cx.user.map(str::to_owned),
        status,
        detail,
        credential_source: cx.credential_source.to_owned(),
    };
    let refused = |reason: String| Error::Registry {
        registry: cx.registry.to_owned(),
        operation: cx.operation.to_owned(),
        reason,
    };
    match e {
        OciDistributionError::UnauthorizedError { .. } => unauthorized(401, String::new()),
        OciDistributionError::AuthenticationFailure(reason) => {
            // The token endpoint's answer: an OCI envelope, a JSON `details`, or text.
            let detail = envelope_detail(&reason).unwrap_or_else(|| one_line(&reason));
            unauthorized(
                if reason.contains("403") || detail.contains("DENIED") {
                    403
                } else {
                    401
                },
                detail,
            )
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let detail = describe_envelope(&envelope);
            if envelope
                .errors
                .iter()
                .any(|e| e.code == OciErrorCode::Unauthorized)
            {
                return unauthorized(401, detail);
            }
            if envelope
                .errors
                .iter()
                .any(|e| e.code == OciErrorCode::Denied)
            {
                return unauthorized(403, detail);
            }
            refused(detail)
        }
        OciDistributionError::ServerError { code, message, .. } => {
            let detail = envelope_detail(&message);
            if code == 401 || code == 403 {
                return unauthorized(code, detail.unwrap_or_default());
            }
            refused(match detail {
                Some(d) => format!("HTTP {code} {d}"),
                None if message.trim().is_empty() => format!("HTTP {code}"),
                None => format!("HTTP {code}: {}", one_line(&message)),
            })
        }
        OciDistributionError::RequestError(e) => {
            if let Some(status) = e.status() {
                if status.as_u16() == 401 || status.as_u16() == 403 {
                    return unauthorized(status.as_u16(), String::new());
                }
                return refused(format!("HTTP {status}"));
            }
            transport_error(&e, &registry)
        }
        other => refused(other.to_string()),
    }
}

/// `CODE: message; CODE: message` from an OCI error envelope in `text`, if it is one.
fn envelope_detail(text: &str) -> Option<String> {
    let envelope: OciEnvelope = serde_json::from_str(text.trim()).ok()?;
    (!envelope.errors.is_empty()).then(|| describe_envelope(&envelope))
}

fn describe_envelope(envelope: &OciEnvelope) -> String {
    envelope
        .errors
        .iter()
        .map(|e| {
            let code = serde_json::to_value(&e.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{:?}", e.code));
            format!("{code}: {}", e.message)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The first line of a registry's text answer, shortened: error pages can be long HTML.
fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// A transport failure: a TLS problem gets its own error (with the `ca-file` hint), the rest
/// say why the registry could not be reached.
fn transport_error(e: &reqwest::Error, registry: &str) -> Error {
    let reason = transport_reason(e);
    if is_tls(e) {
        if reason.contains("corrupt message") || reason.contains("InvalidContentType") {
            return Error::Unreachable {
                registry: registry.to_owned(),
                reason: "it does not speak TLS; for a plain-HTTP registry set `insecure: true`"
                    .to_owned(),
            };
        }
        return Error::Tls {
            registry: registry.to_owned(),
            reason,
        };
    }
    Error::Unreachable {
        registry: registry.to_owned(),
        reason,
    }
}

/// Whether the transport failed in the TLS handshake.
fn is_tls(e: &reqwest::Error) -> bool {
    let reason = transport_reason(e);
    [
        "certificate",
        "UnknownIssuer",
        "corrupt message",
        "InvalidContentType",
        "tls handshake",
        "NotValidForName",
    ]
    .iter()
    .any(|m| reason.contains(m))
}

/// The innermost cause of a transport error, which is what names the problem
/// ("connection refused", "invalid peer certificate").
fn transport_reason(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    let inner = source.to_string();
    if e.is_timeout() {
        "the connection timed out".to_owned()
    } else if inner.is_empty() {
        e.to_string()
    } else {
        inner
    }
}

impl Target for Remote {
    async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let reference = self.blob_reference(digest);
        let digest_text = digest.to_string();
        self.retrying(&format!("the check for blob {digest}"), Op::Other, || {
            self.client.blob_exists(&reference, &digest_text)
        })
        .await
    }

    async fn put_blob(&self, blob: &Blob) -> Result<()> {
        let reference = self.blob_reference(&blob.digest);
        let digest_text = blob.digest.to_string();
        self.retrying(
            &format!("the upload of blob {}", blob.digest),
            Op::Other,
            || {
                self.client
                    .push_blob(&reference, blob.bytes.clone(), &digest_text)
            },
        )
        .await?;
        Ok(())
    }

    async fn put_blob_file(&self, descriptor: &Descriptor, path: &Path) -> Result<()> {
        let reference = self.blob_reference(&descriptor.digest);
        let digest_text = descriptor.digest.to_string();
        let operation = format!("the upload of blob {}", descriptor.digest);
        // Each attempt reopens the file: a stream cannot be rewound.
        self.policy
            .run(&operation, || async {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| Failure::from(Error::io("read", path, e)))?;
                let stream = ReaderStream::with_capacity(file, 256 * 1024)
                    .map_err(OciDistributionError::IoError);
                match self
                    .client
                    .push_blob_stream(&reference, stream, &digest_text, Some(descriptor.size))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => Err(self.failure(e, &operation, Op::Other).await),
                }
            })
            .await
    }

    async fn put_manifest(&self, manifest: &Blob, reference: &ManifestRef) -> Result<Digest> {
        let target = self.reference_for(reference);
        let content_type: reqwest::header::HeaderValue = manifest
            .media_type
            .parse()
            .expect("media types are valid header values");
        let location = self
            .retrying(
                &format!("the manifest upload for {reference}"),
                Op::PutManifest,
                || {
                    self.client.push_manifest_raw(
                        &target,
                        manifest.bytes.clone(),
                        content_type.clone(),
                    )
                },
            )
            .await?;
        // The Location of a stored manifest ends in its digest; confirm it by a HEAD otherwise.
        if let Some(d) = location
            .rsplit('/')
            .next()
            .and_then(|s| s.parse::<Digest>().ok())
        {
            return Ok(d);
        }
        let operation = format!("the digest check for {reference}");
        let auth = self.registry_auth();
        self.retrying(&operation, Op::Other, || {
            self.client.fetch_manifest_digest(&target, &auth)
        })
        .await?
        .parse()
        .map_err(|e: String| Error::Registry {
            registry: self.image.registry().to_owned(),
            operation,
            reason: e,
        })
    }

    async fn get_manifest(&self, reference: &ManifestRef) -> Result<Option<Blob>> {
        let target = self.reference_for(reference);
        let accepted = [
            crate::artifact::MANIFEST_MEDIA_TYPE,
            crate::artifact::INDEX_MEDIA_TYPE,
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ];
        let auth = self.registry_auth();
        let operation = format!("the manifest {reference}");
        let fetched = self
            .policy
            .run(&operation, || async {
                match self
                    .client
                    .pull_manifest_raw(&target, &auth, &accepted)
                    .await
                {
                    Ok((bytes, _digest)) => Ok(Some(bytes)),
                    Err(e) if is_not_found(&e) => Ok(None),
                    Err(e) => Err(self.failure(e, &operation, Op::Other).await),
                }
            })
            .await?;
        let Some(bytes) = fetched else {
            return Ok(None);
        };
        let media_type = super::declared_media_type(&bytes)
            .unwrap_or_else(|| crate::artifact::MANIFEST_MEDIA_TYPE.to_owned());
        let blob = Blob::new(media_type, bytes.to_vec());
        super::check_manifest(reference, &blob)?;
        Ok(Some(blob))
    }

    async fn get_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let reference = self.blob_reference(&descriptor.digest);
        let digest_text = descriptor.digest.to_string();
        let operation = format!("blob {}", descriptor.digest);
        let bytes = self
            .policy
            .run(&operation, || async {
                let mut bytes = Vec::new();
                match self
                    .client
                    .pull_blob(&reference, digest_text.as_str(), &mut bytes)
                    .await
                {
                    Ok(()) => Ok(bytes),
                    Err(e) => Err(self.failure(e, &operation, Op::Other).await),
                }
            })
            .await?;
        super::check_blob(descriptor, &bytes)?;
        Ok(bytes)
    }
}

/// Whether the registry said the thing does not exist.
fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse() {
        let p = parse_bearer_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull""#,
        )
        .unwrap();
        assert_eq!(p[0], ("realm".into(), "https://ghcr.io/token".into()));
        assert_eq!(p[1], ("service".into(), "ghcr.io".into()));
        assert_eq!(p[2].1, "repository:a/b:pull");
        assert!(parse_bearer_challenge(r#"Basic realm="x""#).is_none());
    }

    #[test]
    fn what_is_retried() {
        let server = |code: u16, message: &str| OciDistributionError::ServerError {
            code,
            url: "http://r/v2/".into(),
            message: message.into(),
        };
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(classify(&server(code, ""), Op::Other).is_some(), "{code}");
        }
        for code in [400, 401, 403, 404, 405] {
            assert!(classify(&server(code, ""), Op::Other).is_none(), "{code}");
        }
        let blob_unknown = server(
            400,
            r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
        );
        assert!(classify(&blob_unknown, Op::PutManifest).is_some());
        assert!(classify(&blob_unknown, Op::Other).is_none());
    }

    #[test]
    fn registry_error_codes_are_kept() {
        let e = map_oci_error(
            OciDistributionError::ServerError {
                code: 400,
                url: "http://r/v2/".into(),
                message: r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#
                    .into(),
            },
            "r.example",
            None,
            "the manifest upload",
        );
        assert_eq!(
            e.to_string(),
            "registry r.example refused the manifest upload: HTTP 400 MANIFEST_INVALID: manifest invalid"
        );
    }
}
