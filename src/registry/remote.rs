//! A remote OCI distribution registry. Requests go through the bare HTTP client
//! (`remote/http.rs`, `remote/read.rs`, `remote/upload.rs`, `remote/manifest.rs`), with the
//! credentials login settled, so what is read into memory is read with a cap; oci-client is
//! left the manifest digest check (`HEAD`) when a registry's answer to the `PUT` names none. A layer whose digest is known
//! streams from disk in one monolithic PUT. Every digest the registry reports is compared with the one computed here. Every
//! operation goes through the retry policy ([`super::retry`]); oci-client's errors are
//! classified and mapped in `remote/errors.rs` ([`map_oci_error`]); `remote/identity.rs`
//! exchanges docker identity tokens, `remote/token.rs` checks a token realm and asks it for
//! bearer tokens.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_util::io::ReaderStream;

mod errors;
mod http;
mod identity;
mod login;
mod manifest;
mod read;
mod round_trips;
mod token;
mod upload;

pub use identity::parse_bearer_challenge;

pub use errors::map_oci_error;
use errors::{
    ErrorContext, classify, map_error, retryable_status, transport_error, transport_reason,
};
pub use login::Access;

use super::auth::{self, Credential, Given, Resolved};
use super::retry::{Failure, Policy, Retry};
use super::{Gate, Hashed, ManifestRef, Target};
use crate::artifact::{Blob, Descriptor};
use crate::context::Env;
use crate::error::{Error, Result};
use crate::reference::{Digest, ImageName, Tag};
use crate::secret::Secret;

/// The size of the blocks a file is read in for an upload: large enough that the per-block cost
/// vanishes, small enough that a few in flight stay far below the memory targets.
const UPLOAD_BLOCK: usize = 1 << 20;

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

/// The certificates a connection trusts: the `ca-file`'s, plus the system's for HTTPS. The
/// system store is read once here and given to both HTTP clients: left to themselves, each would
/// read and parse every file under /etc/ssl/certs, which took most of a small push's time. A
/// plain-HTTP registry needs no store of its own; the compiled-in Mozilla roots serve a redirect
/// to HTTPS storage.
fn trust_roots(connection: &Connection) -> Result<Vec<CertificateDer<'static>>> {
    let mut roots = Vec::new();
    if let Some(ca) = &connection.ca_file {
        let data = std::fs::read(ca).map_err(|e| Error::io("read", ca, e))?;
        let given = CertificateDer::pem_slice_iter(&data)
            .collect::<std::result::Result<Vec<_>, _>>()
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                Error::input(
                    "ca-file",
                    format!("`{}` holds no PEM certificate", ca.display()),
                )
            })?;
        roots.extend(given);
    }
    if connection.insecure {
        roots.extend(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    } else {
        let system = rustls_native_certs::load_native_certs();
        for e in &system.errors {
            tracing::debug!("reading the system's CA certificates: {e}");
        }
        if system.certs.is_empty() {
            tracing::warn!(
                "no CA certificates found on this system; using the compiled-in Mozilla roots"
            );
            roots.extend(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        }
        roots.extend(system.certs);
    }
    Ok(roots)
}

/// The file at `path` (`size` bytes) in large blocks, read straight into a request body; the
/// last block waits for `gate`, so the registry cannot commit a blob that turns out to be
/// invalid, and a closed gate ends the body with an error.
async fn gated_blocks(
    path: &Path,
    size: u64,
    gate: &Gate,
) -> std::result::Result<
    impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    Failure,
> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Failure::from(Error::io("read", path, e)))?;
    // A file of another size than was hashed was rewritten: sending it again cannot help.
    let now = file
        .metadata()
        .await
        .map_err(|e| Failure::from(Error::io("read", path, e)))?
        .len();
    if now != size {
        return Err(Failure::from(Error::FileChanged {
            path: path.to_owned(),
        }));
    }
    let mut sent = 0u64;
    let gate = gate.clone();
    Ok(
        ReaderStream::with_capacity(file, UPLOAD_BLOCK).then(move |block| {
            let gate = gate.clone();
            let last = block.as_ref().is_ok_and(|b| {
                sent += b.len() as u64;
                sent >= size
            });
            async move {
                if gate.is_closed() || (last && !gate.opened().await) {
                    return Err(std::io::Error::other(
                        "upload held back: the file failed validation",
                    ));
                }
                block
            }
        }),
    )
}

/// A repository in a remote registry.
pub struct Remote {
    client: OciClient,
    image: ImageName,
    auth: Mutex<RegistryAuth>,
    resolved: Resolved,
    policy: Policy,
    /// A bare HTTP client (same TLS trust, no credentials) for the token exchange and for
    /// reading `Retry-After`, which oci-client does not expose.
    http: reqwest::Client,
    /// The same without a read timeout, for request bodies that take long to send.
    uploads: reqwest::Client,
    scheme: &'static str,
    /// Set once [`Remote::login`] has seen the registry accept the credentials: a 401 after
    /// that is a lost token, worth another attempt, not a refusal.
    verified: std::sync::atomic::AtomicBool,
    /// The bearer tokens issued, for the requests made without oci-client.
    tokens: Mutex<Tokens>,
    /// The token service login checked and asked, for renewing a token that expired.
    token_service: Mutex<Option<token::TokenService>>,
    /// Set once a token realm worth a warning has been named.
    realm_named: std::sync::atomic::AtomicBool,
    /// Set when a login for pushing starts: uploads can then start before the digest is known,
    /// and a refused access is named push access (else pull access).
    streams: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

/// oci-client's client, built on a thread of its own while the first requests, made with the
/// bare client, go out: building it reads and parses the system's CA store once more (its
/// `ClientConfig` conversion also builds a default client, which it drops), a few
/// milliseconds. A push starts building it when it logs in; a pull, which makes all its
/// requests with the bare client, never builds it.
struct OciClient {
    stage: Mutex<Stage>,
    built: tokio::sync::OnceCell<std::result::Result<Client, String>>,
    /// Set once the bearer token login settled on is in the client's cache.
    seeded: tokio::sync::OnceCell<()>,
}

/// Where building oci-client's client stands.
enum Stage {
    /// Not started: the configuration it will be built from.
    Waiting(Box<ClientConfig>),
    /// On its thread: where the client will arrive.
    Building(tokio::sync::oneshot::Receiver<std::result::Result<Client, String>>),
    /// Received (kept in [`OciClient::built`]).
    Taken,
}

impl OciClient {
    fn new(config: ClientConfig) -> Self {
        OciClient {
            stage: Mutex::new(Stage::Waiting(Box::new(config))),
            built: tokio::sync::OnceCell::new(),
            seeded: tokio::sync::OnceCell::new(),
        }
    }

    /// Starts building the client, unless that has started.
    fn start(&self) {
        let mut stage = self.stage.lock().expect("client");
        *stage = match std::mem::replace(&mut *stage, Stage::Taken) {
            Stage::Waiting(config) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    let _ = tx.send(Client::try_from(*config).map_err(|e| e.to_string()));
                });
                Stage::Building(rx)
            }
            started => started,
        };
    }
}

/// The bearer tokens a registry issued, by what they allow.
#[derive(Debug, Default)]
struct Tokens {
    push: Option<Secret>,
    pull: Option<Secret>,
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
        let roots = trust_roots(connection)?;
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(policy.connect_timeout)
                .user_agent(concat!("wasm-oci/", env!("CARGO_PKG_VERSION")))
                .tls_certs_only(
                    roots
                        .iter()
                        .filter_map(|der| reqwest::Certificate::from_der(der).ok()),
                )
        };
        // Each read may wait `WASM_OCI_HTTP_TIMEOUT`, however long the transfer: a slow but
        // steady download completes, a stalled one fails.
        let http = builder().read_timeout(policy.read_timeout);
        // reqwest's read timeout also runs while a request body is sent, so uploads have a
        // client of their own, bounded per request by their size.
        let uploads = builder();
        let config = ClientConfig {
            protocol: if connection.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            use_monolithic_push: true,
            tls_certs_only: roots
                .iter()
                .map(|der| Certificate {
                    encoding: CertificateEncoding::Der,
                    data: der.to_vec(),
                })
                .collect(),
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
        // The bare client checks the same certificates, so a bad CA fails here, at once.
        let http = http.build().map_err(|e| bad_ca(e.to_string()))?;
        let uploads = uploads.build().map_err(|e| bad_ca(e.to_string()))?;
        let client = OciClient::new(config);

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
            uploads,
            scheme: if connection.insecure { "http" } else { "https" },
            verified: std::sync::atomic::AtomicBool::new(false),
            tokens: Mutex::new(Tokens::default()),
            token_service: Mutex::new(None),
            realm_named: std::sync::atomic::AtomicBool::new(false),
            streams: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn registry_auth(&self) -> RegistryAuth {
        self.auth.lock().expect("auth").clone()
    }

    /// oci-client's client, once built; a bearer token that [`Remote::login`] settled on
    /// without it is put in its cache first, so it never asks `/v2/` itself.
    async fn client(&self) -> Result<&Client> {
        let built = self
            .client
            .built
            .get_or_init(|| async {
                self.client.start();
                let stage = std::mem::replace(
                    &mut *self.client.stage.lock().expect("client"),
                    Stage::Taken,
                );
                match stage {
                    Stage::Building(rx) => rx
                        .await
                        .unwrap_or_else(|_| Err("its builder stopped".to_owned())),
                    Stage::Waiting(_) | Stage::Taken => Err("it was not built".to_owned()),
                }
            })
            .await;
        let client = built.as_ref().map_err(|e| Error::Registry {
            registry: self.image.registry().to_owned(),
            operation: "setting up the registry client".to_owned(),
            reason: e.clone(),
        })?;
        self.client
            .seeded
            .get_or_init(|| async {
                let auth = self.registry_auth();
                if let RegistryAuth::Bearer(settled) = &auth {
                    let reference = self.auth_reference();
                    for operation in [RegistryOperation::Push, RegistryOperation::Pull] {
                        let token = self
                            .token(operation)
                            .map_or_else(|| settled.clone(), |t| t.expose().to_owned());
                        // A bearer token is cached as it is, without a request.
                        let _ = client
                            .auth(&reference, &RegistryAuth::Bearer(token), operation)
                            .await;
                    }
                }
            })
            .await;
        Ok(client)
    }

    fn reference_for(&self, r: &ManifestRef) -> Reference {
        match r {
            ManifestRef::Digest(d) => self.image.with_digest(d),
            ManifestRef::Tag(t) => self.image.with_tag(t),
        }
    }

    /// The reference tokens are asked for with: the repository is what they are scoped to.
    fn auth_reference(&self) -> Reference {
        self.reference_for(&ManifestRef::Tag("latest".parse().expect("valid")))
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
            push: self.streams.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    fn unauthorized(&self, status: u16, detail: String) -> Error {
        Error::Unauthorized {
            registry: self.image.registry().to_owned(),
            user: self.resolved.username().map(str::to_owned),
            status,
            detail,
            credential_source: self.resolved.source.clone(),
            push: self.streams.load(std::sync::atomic::Ordering::SeqCst),
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
        if let Some(r) = &mut retry
            && r.reason.contains("429")
        {
            r.after = self.retry_after(&e).await;
        }
        let error = self.map(e, operation);
        if retry.is_none()
            && matches!(error, Error::Unauthorized { status: 401, .. })
            && self.verified.load(std::sync::atomic::Ordering::SeqCst)
        {
            retry = Some(Retry {
                reason:
                    "HTTP 401 after the registry accepted the credentials; authenticating again"
                        .to_owned(),
                after: None,
            });
        }
        Failure { error, retry }
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
        http::retry_after(&response)
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

impl Target for Remote {
    async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.blob_exists(digest).await
    }

    async fn put_blob(&self, blob: &Blob) -> Result<()> {
        let operation = format!("the upload of blob {}", blob.digest);
        let bytes = bytes::Bytes::from(blob.bytes.clone());
        self.policy
            .run(&operation, || {
                self.post_blob(&blob.digest, &bytes, &operation)
            })
            .await
    }

    async fn put_blob_file(&self, descriptor: &Descriptor, path: &Path, gate: &Gate) -> Result<()> {
        let operation = format!("the upload of blob {}", descriptor.digest);
        let size = descriptor.size;
        // Each attempt reopens the file: a stream cannot be rewound.
        self.policy
            .run(&operation, || async {
                // One PUT whose body is the file.
                let stream = gated_blocks(path, size, gate).await?;
                let body = reqwest::Body::wrap_stream(stream);
                match self
                    .put_blob_whole(&descriptor.digest, size, body, &operation)
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(_) if gate.is_closed() => Err(Failure::from(Error::HeldBack {
                        digest: descriptor.digest.clone(),
                    })),
                    Err(failure) => Err(failure),
                }
            })
            .await
    }

    fn uploads_while_hashing(&self) -> bool {
        // Docker Hub counts every manifest read against a pull quota, and telling a re-push
        // from a new push reads a few: there, the file is hashed first, as it always was.
        !auth::is_docker_hub(self.image.registry())
            && self.streams.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn put_blob_file_hashing(
        &self,
        _media_type: &str,
        path: &Path,
        size: u64,
        gate: &Gate,
        hashed: Hashed,
    ) -> Result<Digest> {
        self.put_blob_streamed(path, size, gate, hashed).await
    }

    async fn tags(&self) -> Result<Vec<Tag>> {
        self.fetch_tags().await
    }

    async fn put_manifest(&self, manifest: &Blob, reference: &ManifestRef) -> Result<Digest> {
        if let Some(d) = self.send_manifest(manifest, reference).await? {
            return Ok(d);
        }
        // An answer that names no digest: confirmed by a HEAD.
        let target = self.reference_for(reference);
        let client = self.client().await?;
        let operation = format!("the digest check for {reference}");
        let auth = self.registry_auth();
        self.retrying(&operation, Op::Other, || {
            client.fetch_manifest_digest(&target, &auth)
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
        let Some(bytes) = self.fetch_manifest(reference).await? else {
            return Ok(None);
        };
        let media_type = super::declared_media_type(&bytes)
            .unwrap_or_else(|| crate::artifact::MANIFEST_MEDIA_TYPE.to_owned());
        let blob = Blob::new(media_type, bytes);
        super::check_manifest(reference, &blob)?;
        Ok(Some(blob))
    }

    async fn get_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let bytes = self.fetch_blob(descriptor).await?;
        super::check_blob(descriptor, &bytes)?;
        Ok(bytes)
    }

    async fn referrers_api(&self, subject: &Digest) -> Result<Option<Vec<Digest>>> {
        self.referrers_api_listing(subject).await
    }

    async fn listed_referrers(&self, subject: &Digest) -> Result<Option<Vec<Digest>>> {
        match self.list_referrers(subject).await {
            Ok(listed) => Ok(Some(listed.into_iter().map(|d| d.digest).collect())),
            Err(e) => {
                tracing::debug!("listing the referrers of {subject} failed: {e}");
                Ok(None)
            }
        }
    }

    async fn get_blob_into(
        &self,
        descriptor: &Descriptor,
        download: &mut super::download::Download,
    ) -> Result<()> {
        self.stream_blob_into(descriptor, download).await
    }

    async fn referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>> {
        self.list_referrers(subject).await
    }
}
