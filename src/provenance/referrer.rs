//! The provenance as an OCI 1.1 referrer of the pushed manifest: a manifest with
//! `artifactType: application/vnd.in-toto+json`, the empty config, one layer (the statement, or
//! its DSSE envelope when signed) and `subject` = the pushed manifest. Where the registry has no
//! referrers API (the CNCF registry 2.8, ghcr.io) and in OCI layouts, the referrer is also
//! listed in the fallback tag `sha256-<hex of subject>`, an image index merged with the
//! referrers already there, never dropping one (the listing protocol is
//! `registry::referrers`).

use std::collections::BTreeMap;

use crate::artifact::{Blob, Descriptor, MANIFEST_MEDIA_TYPE, Manifest};
use crate::registry::referrers::Listable;

/// The referrer manifest's `artifactType`.
pub const ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";
/// The media type of an unsigned statement layer.
pub const STATEMENT_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The OCI empty descriptor's media type (the referrer's config).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The digest of the empty JSON object `{}`.
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The annotation naming the statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "in-toto.io/predicate-type";
/// A Sigstore bundle v0.3: its media type, and the `artifactType` of its referrer.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// A bundle referrer's annotation saying what the bundle holds (`dsse-envelope`).
pub const BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// A bundle referrer's annotation naming the signed statement's predicate type.
pub const BUNDLE_PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";

/// A referrer ready to store: its config, its one layer and its manifest.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// The empty config `{}`.
    pub config: Blob,
    /// The statement or the envelope.
    pub layer: Blob,
    /// The referrer manifest.
    pub manifest: Blob,
    /// The manifest's annotations, repeated in the fallback index entry.
    pub annotations: BTreeMap<String, String>,
    /// The manifest's `artifactType`, repeated in the fallback index entry.
    pub artifact_type: &'static str,
}

/// The layer: a statement, or a DSSE envelope around it.
#[derive(Debug, Clone)]
pub enum Payload {
    /// The statement JSON, unsigned.
    Statement(Vec<u8>),
    /// A DSSE envelope's JSON.
    Envelope(Vec<u8>),
}

/// The SBOM referrer's `artifactType`, and its layer's media type when unsigned.
pub const SBOM_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";
/// The in-toto predicate type of a CycloneDX document.
pub const SBOM_PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";

impl Referrer {
    /// The referrer of `subject` carrying `payload`, dated `created` (RFC 3339).
    pub fn new(subject: Descriptor, payload: Payload, created: &str) -> Self {
        let layer = match payload {
            Payload::Statement(bytes) => Blob::new(STATEMENT_MEDIA_TYPE, bytes),
            Payload::Envelope(bytes) => Blob::new(super::dsse::ENVELOPE_MEDIA_TYPE, bytes),
        };
        Self::artifact(
            subject,
            ARTIFACT_TYPE,
            layer,
            [(PREDICATE_TYPE_ANNOTATION, super::slsa::PREDICATE_TYPE)],
            created,
        )
    }

    /// The referrer of `subject` carrying a Sigstore bundle of a DSSE-signed statement, as
    /// cosign and `actions/attest` attach one (cosign's specs/BUNDLE_SPEC.md):
    /// `artifactType` and layer media type the bundle's, the empty config, and the annotations
    /// `dev.sigstore.bundle.content` and `dev.sigstore.bundle.predicateType`.
    pub fn bundle(subject: Descriptor, bundle: Vec<u8>, created: &str) -> Self {
        Self::bundle_of(subject, bundle, super::slsa::PREDICATE_TYPE, created)
    }

    /// [`Referrer::bundle`] of a statement of `predicate_type` (the SBOM's, `https://cyclonedx.org/bom`).
    pub fn bundle_of(
        subject: Descriptor,
        bundle: Vec<u8>,
        predicate_type: &str,
        created: &str,
    ) -> Self {
        Self::artifact(
            subject,
            BUNDLE_MEDIA_TYPE,
            Blob::new(BUNDLE_MEDIA_TYPE, bundle),
            [
                (BUNDLE_CONTENT_ANNOTATION, "dsse-envelope"),
                (BUNDLE_PREDICATE_TYPE_ANNOTATION, predicate_type),
            ],
            created,
        )
    }

    /// The SBOM referrer of `subject`: `artifactType: application/vnd.cyclonedx+json`, its one
    /// layer the CycloneDX document, or a DSSE envelope of the in-toto statement around it
    /// (then annotated with the statement's predicate type, as the provenance's envelope is).
    pub fn sbom(subject: Descriptor, layer: Blob, created: &str) -> Self {
        use self::{SBOM_ARTIFACT_TYPE as ARTIFACT_TYPE, SBOM_PREDICATE_TYPE as PREDICATE_TYPE};
        if layer.media_type == super::dsse::ENVELOPE_MEDIA_TYPE {
            let annotations = [(PREDICATE_TYPE_ANNOTATION, PREDICATE_TYPE)];
            Self::artifact(subject, ARTIFACT_TYPE, layer, annotations, created)
        } else {
            Self::artifact(subject, ARTIFACT_TYPE, layer, [], created)
        }
    }

    /// An artifact manifest of `artifact_type` about `subject`: the empty config, `layer` as
    /// its one layer, `created` and `annotations` as its annotations.
    fn artifact<const N: usize>(
        subject: Descriptor,
        artifact_type: &'static str,
        layer: Blob,
        annotations: [(&str, &str); N],
        created: &str,
    ) -> Self {
        let config = Blob::new(EMPTY_MEDIA_TYPE, b"{}".to_vec());
        let annotations: BTreeMap<String, String> =
            std::iter::once((super::annotations::CREATED, created))
                .chain(annotations)
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_owned()),
            artifact_type: Some(artifact_type.to_owned()),
            config: config.descriptor(),
            layers: vec![layer.descriptor()],
            subject: Some(subject),
            annotations: annotations.clone(),
        };
        Referrer {
            config,
            layer,
            manifest: Blob::new(MANIFEST_MEDIA_TYPE, manifest.to_bytes()),
            annotations,
            artifact_type,
        }
    }

    /// The referrer's descriptor as an index lists it (with `artifactType` and annotations).
    pub fn index_entry(&self) -> Descriptor {
        Descriptor {
            artifact_type: Some(self.artifact_type.to_owned()),
            annotations: self.annotations.clone(),
            ..self.manifest.descriptor()
        }
    }
}

impl Listable for Referrer {
    fn manifest(&self) -> &Blob {
        &self.manifest
    }

    fn index_entry(&self) -> Descriptor {
        Referrer::index_entry(self)
    }

    fn artifact_type(&self) -> &str {
        self.artifact_type
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use crate::reference::{Digest, Tag};
    use crate::registry::ReadTarget;
    use crate::registry::layout::{Layout, REF_NAME};
    use crate::registry::referrers::{Listing, STALE_SLACK, merge_into_index, publish, store};
    use crate::registry::{ManifestRef, WriteTarget, fallback_tag};

    fn subject() -> Blob {
        Blob::new(MANIFEST_MEDIA_TYPE, br#"{"schemaVersion":2}"#.to_vec())
    }

    #[test]
    fn the_referrer_manifest_is_exactly_this() {
        let s = subject();
        let r = Referrer::new(
            s.descriptor(),
            Payload::Statement(b"{}".to_vec()),
            "2024-01-01T00:00:00Z",
        );
        assert_eq!(r.config.digest.to_string(), EMPTY_DIGEST);
        let text = String::from_utf8(r.manifest.bytes.clone()).unwrap();
        assert_eq!(
            text,
            format!(
                concat!(
                    r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
                    r#""artifactType":"application/vnd.in-toto+json","#,
                    r#""config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"#,
                    r#""layers":[{{"mediaType":"application/vnd.in-toto+json","digest":"{layer}","size":2}}],"#,
                    r#""subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{subject}","size":{size}}},"#,
                    r#""annotations":{{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v1","#,
                    r#""org.opencontainers.image.created":"2024-01-01T00:00:00Z"}}}}"#
                ),
                empty = EMPTY_DIGEST,
                layer = Digest::of(b"{}"),
                subject = s.digest,
                size = s.bytes.len(),
            )
        );
        assert_eq!(
            fallback_tag(&s.digest).as_str(),
            format!("sha256-{}", s.digest.hex())
        );
    }

    /// What a push does with a referrer: its blobs, its manifest, then its listing. The
    /// fallback tag written, if one was.
    async fn attach<T: WriteTarget>(
        target: &T,
        r: &Referrer,
        subject: &Digest,
    ) -> Result<Option<Tag>> {
        for blob in [&r.config, &r.layer] {
            crate::registry::store_blob(target, blob).await?;
        }
        let listing = store(target, r, subject).await?;
        publish(target, &listing).await?;
        Ok(match listing {
            Listing::FallbackTag { tag, .. } => Some(tag),
            Listing::Listed => None,
        })
    }

    /// The entries an image index lists, in order, read as the registry code reads them.
    fn entries_listed(index: &Blob) -> Vec<Descriptor> {
        crate::registry::index_entries(&index.bytes).unwrap()
    }

    /// The digests among `entries`, in order.
    fn digests(entries: &[Descriptor]) -> Vec<String> {
        entries.iter().map(|e| e.digest.to_string()).collect()
    }

    #[tokio::test]
    async fn layout_fallback_index_keeps_every_referrer() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let s = subject();
        layout
            .put_manifest(&s, &ManifestRef::Digest(s.digest.clone()))
            .await
            .unwrap();
        let one = Referrer::new(
            s.descriptor(),
            Payload::Statement(b"{\"a\":1}".to_vec()),
            "t",
        );
        let two = Referrer::new(
            s.descriptor(),
            Payload::Envelope(b"{\"b\":2}".to_vec()),
            "t",
        );
        let tag = fallback_tag(&s.digest);
        assert_eq!(
            attach(&layout, &one, &s.digest).await.unwrap(),
            Some(tag.clone())
        );
        assert_eq!(
            attach(&layout, &two, &s.digest).await.unwrap(),
            Some(tag.clone())
        );
        // Attaching the first again changes nothing.
        assert_eq!(attach(&layout, &one, &s.digest).await.unwrap(), None);

        let index = layout.read_index().unwrap();
        let entry = index
            .manifests
            .iter()
            .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(tag.as_str()))
            .unwrap();
        let fallback = layout
            .get_manifest(&ManifestRef::Digest(entry.digest.clone()))
            .await
            .unwrap()
            .unwrap();
        let listed = entries_listed(&fallback);
        assert_eq!(
            digests(&listed),
            [
                one.manifest.digest.to_string(),
                two.manifest.digest.to_string()
            ]
        );
        assert_eq!(listed[1].artifact_type.as_deref(), Some(ARTIFACT_TYPE));
        assert_eq!(
            listed[1].annotations[PREDICATE_TYPE_ANNOTATION],
            super::super::slsa::PREDICATE_TYPE
        );
    }

    #[tokio::test]
    async fn a_listing_read_long_before_its_write_keeps_what_another_push_listed_since() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let s = subject();
        let one = Referrer::new(s.descriptor(), Payload::Statement(b"1".to_vec()), "t");
        let two = Referrer::new(s.descriptor(), Payload::Statement(b"2".to_vec()), "t");
        for blob in [&one.config, &one.layer, &two.layer] {
            crate::registry::store_blob(&layout, blob).await.unwrap();
        }
        // The first push reads the fallback tag (none yet); the second lists its referrer;
        // the first writes only after a while, as a push on a loaded machine does.
        let late = store(&layout, &one, &s.digest).await.unwrap();
        attach(&layout, &two, &s.digest).await.unwrap();
        tokio::time::sleep(STALE_SLACK * 2).await;
        publish(&layout, &late).await.unwrap();

        let tag = fallback_tag(&s.digest);
        let index = layout
            .get_manifest(&ManifestRef::Tag(tag))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            digests(&entries_listed(&index)),
            [
                two.manifest.digest.to_string(),
                one.manifest.digest.to_string()
            ]
        );
    }

    /// A layout whose "referrers API" lists what it is told to.
    struct WithApi(Layout, Vec<Digest>);

    impl WriteTarget for WithApi {
        async fn has_blob(&self, d: &Digest) -> Result<bool> {
            self.0.has_blob(d).await
        }
        async fn put_blob(&self, b: &Blob) -> Result<()> {
            self.0.put_blob(b).await
        }
        async fn put_blob_file(
            &self,
            d: &Descriptor,
            p: &std::path::Path,
            g: &crate::registry::Gate,
        ) -> Result<()> {
            self.0.put_blob_file(d, p, g).await
        }
        async fn put_manifest(&self, m: &Blob, r: &ManifestRef) -> Result<Digest> {
            self.0.put_manifest(m, r).await
        }
    }

    impl ReadTarget for WithApi {
        async fn get_manifest(&self, r: &ManifestRef) -> Result<Option<Blob>> {
            self.0.get_manifest(r).await
        }
        async fn get_blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
            self.0.get_blob(d).await
        }
        async fn listed_referrers(&self, _subject: &Digest) -> Result<Option<Vec<Digest>>> {
            Ok(Some(self.1.clone()))
        }
        async fn get_blob_into(
            &self,
            d: &Descriptor,
            download: &mut crate::registry::download::Download,
        ) -> Result<()> {
            self.0.get_blob_into(d, download).await
        }
        async fn referrers(&self, s: &Digest) -> Result<Vec<Descriptor>> {
            self.0.referrers(s).await
        }
    }

    #[tokio::test]
    async fn a_registry_that_lists_the_referrer_gets_no_fallback_tag() {
        let dir = tempfile::tempdir().unwrap();
        let s = subject();
        let r = Referrer::new(s.descriptor(), Payload::Statement(b"{}".to_vec()), "t");
        let target = WithApi(
            Layout::create(dir.path()).unwrap(),
            vec![r.manifest.digest.clone()],
        );
        assert_eq!(attach(&target, &r, &s.digest).await.unwrap(), None);
        // The referrer manifest and its blobs are stored; no tag was made.
        assert!(target.0.has_blob(&r.layer.digest).await.unwrap());
        assert!(target.0.has_blob(&r.manifest.digest).await.unwrap());
        assert!(target.0.read_index().unwrap().manifests.is_empty());
    }

    #[test]
    fn a_fallback_tag_on_something_else_is_not_overwritten() {
        let s = subject();
        let r = Referrer::new(s.descriptor(), Payload::Statement(b"{}".to_vec()), "t");
        let tag = fallback_tag(&s.digest);
        let err = merge_into_index(Some(&s), &[r.index_entry()], &tag).unwrap_err();
        assert!(err.to_string().contains("not an OCI image index"), "{err}");
    }
}
