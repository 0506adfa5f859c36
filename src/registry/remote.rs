//! A remote OCI distribution registry, through oci-client. Blobs stream from disk in one
//! monolithic PUT (the digest is known from validation), and every digest the registry reports
//! is compared with the one computed here. Foreign errors are mapped in [`map_oci_error`] only.

use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use tokio_util::io::ReaderStream;

use super::{ManifestRef, Target};
use crate::artifact::{Blob, Descriptor};
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
    /// Basic credentials.
    pub credentials: Option<(String, Secret)>,
}

/// A repository in a remote registry.
pub struct Remote {
    client: Client,
    image: ImageName,
    auth: RegistryAuth,
    user: Option<String>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// A client for `image`'s repository.
    pub fn new(image: ImageName, connection: &Connection) -> Result<Self> {
        let mut extra_root_certificates = Vec::new();
        if let Some(ca) = &connection.ca_file {
            let data = std::fs::read(ca).map_err(|e| Error::io("read", ca, e))?;
            if !String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
                return Err(Error::input(
                    "ca-file",
                    format!("`{}` holds no PEM certificate", ca.display()),
                ));
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
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(120)),
            user_agent: concat!("wasm-oci/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let (auth, user) = match &connection.credentials {
            Some((user, password)) => (
                RegistryAuth::Basic(user.clone(), password.expose().to_owned()),
                Some(user.clone()),
            ),
            None => (RegistryAuth::Anonymous, None),
        };
        Ok(Remote {
            client: Client::new(config),
            image,
            auth,
            user,
        })
    }

    /// Authenticates for pushing, so bad credentials fail before any upload.
    pub async fn login(&self) -> Result<()> {
        let reference = self.reference_for(&ManifestRef::Tag("latest".parse().expect("valid")));
        self.client
            .auth(&reference, &self.auth, RegistryOperation::Push)
            .await
            .map_err(|e| self.map(e, "authentication"))?;
        Ok(())
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
        map_oci_error(e, self.image.registry(), self.user.as_deref(), operation)
    }
}

/// Maps oci-client's errors to ours: the one place that knows their shapes.
pub fn map_oci_error(
    e: OciDistributionError,
    registry: &str,
    user: Option<&str>,
    operation: &str,
) -> Error {
    let registry = registry.to_owned();
    match e {
        OciDistributionError::UnauthorizedError { .. } => Error::Unauthorized {
            registry,
            user: user.map(str::to_owned),
            status: 401,
        },
        OciDistributionError::AuthenticationFailure(reason) => {
            if reason.contains("401") || reason.contains("403") || reason.contains("nauthorized") {
                Error::Unauthorized {
                    registry,
                    user: user.map(str::to_owned),
                    status: if reason.contains("403") { 403 } else { 401 },
                }
            } else {
                Error::Registry {
                    registry,
                    operation: operation.to_owned(),
                    reason: reason.to_lowercase(),
                }
            }
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let reason = envelope
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
                .join("; ");
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::Unauthorized
                        | oci_client::errors::OciErrorCode::Denied
                )
            }) {
                return Error::Unauthorized {
                    registry,
                    user: user.map(str::to_owned),
                    status: 401,
                };
            }
            Error::Registry {
                registry,
                operation: operation.to_owned(),
                reason,
            }
        }
        OciDistributionError::ServerError { code, message, .. } => {
            if code == 401 || code == 403 {
                return Error::Unauthorized {
                    registry,
                    user: user.map(str::to_owned),
                    status: code,
                };
            }
            Error::Registry {
                registry,
                operation: operation.to_owned(),
                reason: format!("HTTP {code}: {}", message.trim()),
            }
        }
        OciDistributionError::RequestError(e) => {
            if let Some(status) = e.status() {
                if status.as_u16() == 401 || status.as_u16() == 403 {
                    return Error::Unauthorized {
                        registry,
                        user: user.map(str::to_owned),
                        status: status.as_u16(),
                    };
                }
                return Error::Registry {
                    registry,
                    operation: operation.to_owned(),
                    reason: format!("HTTP {status}"),
                };
            }
            Error::Unreachable {
                registry,
                reason: transport_reason(&e),
            }
        }
        other => Error::Registry {
            registry,
            operation: operation.to_owned(),
            reason: other.to_string(),
        },
    }
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
        self.client
            .blob_exists(&self.blob_reference(digest), &digest.to_string())
            .await
            .map_err(|e| self.map(e, &format!("the check for blob {digest}")))
    }

    async fn put_blob(&self, blob: &Blob) -> Result<()> {
        self.client
            .push_blob(
                &self.blob_reference(&blob.digest),
                blob.bytes.clone(),
                &blob.digest.to_string(),
            )
            .await
            .map_err(|e| self.map(e, &format!("the upload of blob {}", blob.digest)))?;
        Ok(())
    }

    async fn put_blob_file(&self, descriptor: &Descriptor, path: &Path) -> Result<()> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io("read", path, e))?;
        let stream =
            ReaderStream::with_capacity(file, 256 * 1024).map_err(OciDistributionError::IoError);
        self.client
            .push_blob_stream(
                &self.blob_reference(&descriptor.digest),
                stream,
                &descriptor.digest.to_string(),
                Some(descriptor.size),
            )
            .await
            .map_err(|e| self.map(e, &format!("the upload of blob {}", descriptor.digest)))?;
        Ok(())
    }

    async fn put_manifest(&self, manifest: &Blob, reference: &ManifestRef) -> Result<Digest> {
        let target = self.reference_for(reference);
        let content_type = manifest
            .media_type
            .parse()
            .expect("media types are valid header values");
        let location = self
            .client
            .push_manifest_raw(&target, manifest.bytes.clone(), content_type)
            .await
            .map_err(|e| self.map(e, &format!("the manifest upload for {reference}")))?;
        // The Location of a stored manifest ends in its digest; confirm it by a HEAD otherwise.
        let reported = match location
            .rsplit('/')
            .next()
            .and_then(|s| s.parse::<Digest>().ok())
        {
            Some(d) => d,
            None => self
                .client
                .fetch_manifest_digest(&target, &self.auth)
                .await
                .map_err(|e| self.map(e, &format!("the digest check for {reference}")))?
                .parse()
                .map_err(|e: String| Error::Registry {
                    registry: self.image.registry().to_owned(),
                    operation: format!("the digest check for {reference}"),
                    reason: e,
                })?,
        };
        Ok(reported)
    }

    async fn get_manifest(&self, reference: &ManifestRef) -> Result<Option<Blob>> {
        let target = self.reference_for(reference);
        let accepted = [
            crate::artifact::MANIFEST_MEDIA_TYPE,
            crate::artifact::INDEX_MEDIA_TYPE,
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ];
        let bytes = match self
            .client
            .pull_manifest_raw(&target, &self.auth, &accepted)
            .await
        {
            Ok((bytes, _digest)) => bytes,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.map(e, &format!("the manifest {reference}"))),
        };
        let media_type = super::declared_media_type(&bytes)
            .unwrap_or_else(|| crate::artifact::MANIFEST_MEDIA_TYPE.to_owned());
        let blob = Blob::new(media_type, bytes.to_vec());
        super::check_manifest(reference, &blob)?;
        Ok(Some(blob))
    }

    async fn get_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.client
            .pull_blob(
                &self.blob_reference(&descriptor.digest),
                descriptor.digest.to_string().as_str(),
                &mut bytes,
            )
            .await
            .map_err(|e| self.map(e, &format!("blob {}", descriptor.digest)))?;
        super::check_blob(descriptor, &bytes)?;
        Ok(bytes)
    }

    async fn listed_referrers(&self, subject: &Digest) -> Result<Option<Vec<Digest>>> {
        // oci-client asks the referrers API and reads the fallback tag on a 404.
        match self
            .client
            .pull_referrers(&self.image.with_digest(subject), None)
            .await
        {
            Ok(index) => Ok(Some(
                index
                    .manifests
                    .iter()
                    .filter_map(|m| m.digest.parse().ok())
                    .collect(),
            )),
            Err(e) => {
                tracing::debug!("listing the referrers of {subject} failed: {e}");
                Ok(None)
            }
        }
    }
}

/// Whether the registry said the thing does not exist.
fn is_not_found(e: &OciDistributionError) -> bool {
    use oci_client::errors::OciErrorCode;
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
