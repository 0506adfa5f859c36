//! A remote OCI distribution registry, reached through one HTTP client of our own:
//! `remote/wire.rs` sends every request under the registry's shared backoff,
//! `remote/http.rs` puts the credentials on those to the registry's host, `remote/login.rs` is
//! the auth layer (one probe, then basic or bearer, a new token after a 401),
//! `remote/errors.rs` reads every answer into our errors, and every operation runs under the
//! retry policy ([`super::retry`]). The distribution API itself is in `remote/read.rs`
//! (manifests, blobs, tags, referrers), `remote/upload.rs` (blobs) and `remote/manifest.rs`;
//! `remote/token.rs` checks a token realm and asks it for bearer tokens, `remote/identity.rs`
//! exchanges docker identity tokens. What is read into memory is read with a cap, and every
//! digest the registry reports is compared with the one computed here.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_util::io::ReaderStream;

mod errors;
mod http;
mod identity;
mod login;
mod manifest;
mod pace;
mod read;
mod round_trips;
mod token;
mod upload;
mod wire;

pub use token::parse_bearer_challenge;

pub use login::Access;

use super::auth::{self, Credential, Given, Resolved};
use super::retry::{Backoff, Failure, MAX_IN_FLIGHT, Policy};
use super::{Gate, Hashed, ManifestRef, ReadTarget, WriteTarget};
use crate::artifact::{Blob, Descriptor};
use crate::context::Env;
use crate::error::{Error, Result};
use crate::input;
use crate::reference::{Digest, ImageName, Tag};

/// The size of the blocks a file is read in for an upload: large enough that the per-block cost
/// vanishes, small enough that a few in flight stay far below the memory targets.
const UPLOAD_BLOCK: usize = 1 << 20;

/// How to reach and authenticate to a registry, parsed from the inputs and the environment
/// before any work starts: a bad `ca-file` or `WASM_OCI_*` setting fails before a build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    /// Allow plain HTTP (and only that: certificates are still checked on HTTPS).
    pub insecure: bool,
    /// The PEM file the extra CA certificates came from, named in errors.
    pub ca_file: Option<PathBuf>,
    /// The extra CA certificates, read from `ca_file` ([`ca_certificates`]).
    pub ca_certificates: Vec<CertificateDer<'static>>,
    /// The credentials the user gave (`username`, `password`, `github-token`), checked.
    pub given: Given,
    /// The retry policy and timeouts: the defaults, or the `WASM_OCI_RETRY_*` and
    /// `WASM_OCI_HTTP_TIMEOUT` settings ([`Policy::from_env`]).
    pub policy: Policy,
    /// The environment: docker config locations, `PATH` for credential helpers,
    /// `GITHUB_ACTOR`.
    pub env: Env,
}

/// The certificates of the PEM file `ca` (the `ca-file` input); a file without one is refused.
pub fn ca_certificates(ca: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let data = crate::files::read_input_file(input::CA_FILE, ca, None)?;
    CertificateDer::pem_slice_iter(&data)
        .collect::<std::result::Result<Vec<_>, _>>()
        .ok()
        .filter(|certs| !certs.is_empty())
        .ok_or_else(|| {
            Error::input(
                input::CA_FILE,
                format!("`{}` holds no PEM certificate", ca.display()),
            )
        })
}

/// The certificates a connection trusts: the `ca-file`'s, plus the system's for HTTPS. The
/// system store is read once here and given to both HTTP clients: left to themselves, each would
/// read and parse every file under /etc/ssl/certs, which took most of a small push's time. A
/// plain-HTTP registry needs no store of its own; the compiled-in Mozilla roots serve a redirect
/// to HTTPS storage.
fn trust_roots(connection: &Connection) -> Vec<CertificateDer<'static>> {
    let mut roots = connection.ca_certificates.clone();
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
    roots
}

/// The file at `path` (`size` bytes) in large blocks, read straight into a request body; the
/// last block waits for `gate`, so the registry cannot commit a blob that turns out to be
/// invalid, and a closed gate ends the body with an error.
async fn gated_blocks(
    path: &Path,
    size: u64,
    gate: &Gate,
    meter: &pace::Meter,
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
    let meter = meter.clone();
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut progress = super::progress::Progress::new(format!("upload of {name}"), size);
    Ok(
        ReaderStream::with_capacity(file, UPLOAD_BLOCK).then(move |block| {
            let gate = gate.clone();
            let last = block.as_ref().is_ok_and(|b| {
                sent += b.len() as u64;
                meter.add(b.len());
                progress.advance(b.len() as u64);
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
    image: ImageName,
    resolved: Resolved,
    policy: Policy,
    /// The HTTP client every request goes through (same TLS trust for all).
    http: reqwest::Client,
    /// The same without a read timeout, for request bodies that take long to send.
    uploads: reqwest::Client,
    scheme: &'static str,
    /// The auth layer's state: what login settled, a token renewed after a 401.
    auth: Mutex<login::AuthState>,
    /// Held while a token is asked for after a 401, so requests answered 401 together ask once.
    renewal: tokio::sync::Mutex<()>,
    /// What every request to the registry shares: the bound on requests in flight and the
    /// pause a 429 or 503 imposes.
    backoff: Arc<Backoff>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// A client for `image`'s repository. Finds the credentials (see [`auth`]).
    pub fn new(image: ImageName, connection: &Connection) -> Result<Self> {
        let policy = connection.policy;
        let roots = trust_roots(connection);
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
        let bad_ca = |e: String| {
            Error::input(
                input::CA_FILE,
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
        // A bad CA fails here, at once.
        let http = http.build().map_err(|e| bad_ca(e.to_string()))?;
        let uploads = uploads.build().map_err(|e| bad_ca(e.to_string()))?;

        let resolved = auth::resolve(image.registry(), &connection.given, &connection.env)?;
        tracing::info!("credentials for {}: {}", image.registry(), resolved.source);
        Ok(Remote {
            backoff: Arc::new(Backoff::new(&policy, MAX_IN_FLIGHT)),
            image,
            resolved,
            policy,
            http,
            uploads,
            scheme: if connection.insecure { "http" } else { "https" },
            auth: Mutex::new(login::AuthState::default()),
            renewal: tokio::sync::Mutex::new(()),
        })
    }
}

impl WriteTarget for Remote {
    async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.blob_exists(digest).await
    }

    async fn put_blob(&self, blob: &Blob) -> Result<()> {
        let operation = format!("the upload of blob {}", blob.digest);
        let bytes = bytes::Bytes::from(blob.bytes.clone());
        self.retrying(&operation, async |attempt| {
            self.post_blob(attempt, &blob.digest, &bytes, &operation)
                .await
        })
        .await
    }

    async fn put_blob_file(&self, descriptor: &Descriptor, path: &Path, gate: &Gate) -> Result<()> {
        let operation = format!("the upload of blob {}", descriptor.digest);
        let size = descriptor.size;
        // Each attempt reopens the file: a stream cannot be rewound.
        self.retrying(&operation, async |attempt| {
            // One PUT whose body is the file.
            let meter = pace::Meter::default();
            let stream = gated_blocks(path, size, gate, &meter).await?;
            let body = reqwest::Body::wrap_stream(stream);
            match self
                .put_blob_whole(
                    attempt,
                    &descriptor.digest,
                    size,
                    (body, &meter),
                    &operation,
                )
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
        !auth::is_docker_hub(self.image.registry()) && self.pushing()
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
        self.manifest_digest(reference, &manifest.media_type).await
    }
}

impl ReadTarget for Remote {
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
