//! Which Sigstore services sign: read from a signing config (Sigstore's
//! `application/vnd.dev.sigstore.signingconfig.v0.2+json`, alone or inside a client trust
//! config), or one of the two instances GitHub Actions workflows sign with.

use sigstore_trust_root::{SIGSTORE_PRODUCTION_SIGNING_CONFIG, SigningConfig};

use crate::context::GithubContext;
use crate::error::{Error, Result};
use crate::input;

/// The client trust config's media type: a trusted root and a signing config in one file.
pub const CLIENT_TRUST_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";
/// A trusted root's media type.
pub const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// GitHub's own instance (private and internal repositories), as `@actions/attest` names it:
/// Fulcio and a timestamp authority, no transparency log. GitHub publishes no signing config
/// for it, so it is written here in that format.
pub const GITHUB_SIGNING_CONFIG: &str = r#"{
  "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
  "caUrls": [{"url": "https://fulcio.githubapp.com", "majorApiVersion": 1, "validFor": {"start": "2023-10-01T00:00:00Z"}, "operator": "github.com"}],
  "oidcUrls": [],
  "rekorTlogUrls": [],
  "tsaUrls": [{"url": "https://timestamp.githubapp.com/api/v1/timestamp", "majorApiVersion": 1, "validFor": {"start": "2023-10-01T00:00:00Z"}, "operator": "github.com"}],
  "rekorTlogConfig": {"selector": "ANY"},
  "tsaConfig": {"selector": "ANY"}
}"#;

/// The services one signature uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services {
    /// Which instance, for logs: "the Sigstore public-good instance", "GitHub's instance".
    pub name: String,
    /// Fulcio's base URL.
    pub fulcio: String,
    /// A Rekor v1 log's base URL, when the instance has one.
    pub rekor: Option<String>,
    /// The timestamp authority's URL (`.../api/v1/timestamp`), when the instance has one.
    pub tsa: Option<String>,
}

impl Services {
    /// The services a signing config selects: its first valid Fulcio, Rekor v1 log and
    /// timestamp authority. Rekor v2 logs are not used: a bundle with a v1 `dsse` entry is what
    /// `gh attestation verify`, cosign and every Sigstore client verify.
    pub fn from_signing_config(config: &SigningConfig, name: &str) -> Result<Self, String> {
        let fulcio = config
            .fulcio_url()
            .ok_or("the signing config names no valid Fulcio (`caUrls`)")?
            .url
            .trim_end_matches('/')
            .to_owned();
        let rekor = config
            .rekor_url(Some(1))
            .map(|e| e.url.trim_end_matches('/').to_owned());
        let tsa = config.tsa_url().map(|e| e.url.clone());
        if rekor.is_none() && tsa.is_none() {
            return Err(
                "the signing config names neither a Rekor v1 log nor a timestamp authority; a signature needs one of them to prove when it was made"
                    .to_owned(),
            );
        }
        Ok(Services {
            name: name.to_owned(),
            fulcio,
            rekor,
            tsa,
        })
    }

    /// Refuses a service reached in plain HTTP unless `insecure`: the job's OIDC token goes to
    /// Fulcio, and what a log or timestamp authority answers is what the signature rests on.
    pub fn check_https(&self, insecure: bool) -> Result<(), String> {
        if insecure {
            return Ok(());
        }
        let named = [
            ("Fulcio", Some(&self.fulcio)),
            ("the Rekor log", self.rekor.as_ref()),
            ("the timestamp authority", self.tsa.as_ref()),
        ];
        for (service, url) in named {
            if let Some(url) = url.filter(|u| !is_https(u)) {
                return Err(format!(
                    "{} names {service} at `{url}`, which is not HTTPS; the job's OIDC token and the signature would travel in the clear: use an https:// URL (or `insecure: true` for a test deployment)",
                    self.name
                ));
            }
        }
        Ok(())
    }

    /// Sigstore's public-good instance (fulcio.sigstore.dev, rekor.sigstore.dev).
    pub fn public_good() -> Self {
        let config = SigningConfig::from_json(SIGSTORE_PRODUCTION_SIGNING_CONFIG)
            .expect("the embedded signing config parses");
        Self::from_signing_config(&config, "the Sigstore public-good instance")
            .expect("the embedded signing config names Fulcio and Rekor")
    }

    /// GitHub's instance (fulcio.githubapp.com, timestamp.githubapp.com).
    pub fn github() -> Self {
        let config = SigningConfig::from_json(GITHUB_SIGNING_CONFIG)
            .expect("GitHub's signing config parses");
        Self::from_signing_config(&config, "GitHub's Sigstore instance")
            .expect("GitHub's signing config names Fulcio and a timestamp authority")
    }

    /// The instance `actions/attest` picks: public-good for a public repository, GitHub's for
    /// any other (private, internal, or not known).
    pub fn for_visibility(visibility: Option<&str>) -> Self {
        if visibility == Some("public") {
            Self::public_good()
        } else {
            Self::github()
        }
    }
}

/// Whether `url` is an `https://` URL (the scheme in any case, as URLs allow).
fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// The `repository.visibility` of the event payload (`GITHUB_EVENT_PATH`), as `actions/attest`
/// reads it.
pub fn repository_visibility(ctx: &GithubContext) -> Option<String> {
    let text = std::fs::read_to_string(ctx.event_path.as_ref()?).ok()?;
    let event: serde_json::Value = serde_json::from_str(&text).ok()?;
    event
        .pointer("/repository/visibility")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// The `sigstore-trust-config` input, read: a client trust config (trusted root and signing
/// config), a signing config alone, or a trusted root alone (enough to verify, not to sign).
#[derive(Debug, Clone)]
pub struct TrustConfig {
    /// Where it came from: the file's path, or "the input's JSON".
    pub origin: String,
    /// The signing config, when there is one.
    pub signing_config: Option<SigningConfig>,
    /// The trusted root's JSON text, when there is one.
    pub trusted_root: Option<String>,
}

impl PartialEq for TrustConfig {
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin && self.trusted_root == other.trusted_root
    }
}

impl TrustConfig {
    /// Reads `value`: JSON text (it starts with `{`), or the path of a JSON file relative to
    /// `working_directory`, as verify reads the same input.
    pub fn read(value: &str, working_directory: &std::path::Path) -> Result<Self> {
        let bad = |reason: String| Error::input(input::SIGSTORE_TRUST_CONFIG, reason);
        let (text, origin) = if value.trim_start().starts_with('{') {
            (value.to_owned(), "the input's JSON".to_owned())
        } else {
            let path = working_directory.join(value);
            let text = crate::files::read_input_text(input::SIGSTORE_TRUST_CONFIG, &path, None)?;
            (text, format!("`{value}`"))
        };
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("{origin} is not JSON: {e}")))?;
        let media_type = json["mediaType"].as_str().unwrap_or_default();
        let signing = |value: &serde_json::Value| {
            SigningConfig::from_json(&value.to_string()).map_err(|e| {
                bad(format!(
                    "the signing config in {origin} does not parse: {e}"
                ))
            })
        };
        let (signing_config, trusted_root) = match media_type {
            CLIENT_TRUST_CONFIG_MEDIA_TYPE => (
                Some(signing(&json["signingConfig"])?),
                json.get("trustedRoot").map(|root| root.to_string()),
            ),
            sigstore_trust_root::SIGNING_CONFIG_MEDIA_TYPE => (Some(signing(&json)?), None),
            TRUSTED_ROOT_MEDIA_TYPE => (None, Some(text)),
            other => {
                return Err(bad(format!(
                    "{origin} has media type `{other}`; give a client trust config (`{CLIENT_TRUST_CONFIG_MEDIA_TYPE}`) or a signing config (`{}`)",
                    sigstore_trust_root::SIGNING_CONFIG_MEDIA_TYPE
                )));
            }
        };
        Ok(TrustConfig {
            origin,
            signing_config,
            trusted_root,
        })
    }

    /// The services its signing config selects.
    pub fn services(&self) -> Result<Services> {
        let config = self.signing_config.as_ref().ok_or_else(|| {
            Error::input(
                input::SIGSTORE_TRUST_CONFIG,
                format!(
                    "{} is a trusted root without a signing config; signing needs a client trust config or a signing config",
                    self.origin
                ),
            )
        })?;
        Services::from_signing_config(config, &format!("the signing config in {}", self.origin))
            .map_err(|e| Error::input(input::SIGSTORE_TRUST_CONFIG, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_repositories_sign_with_public_good_and_others_with_github() {
        let public = Services::for_visibility(Some("public"));
        assert_eq!(public.fulcio, "https://fulcio.sigstore.dev");
        assert_eq!(public.rekor.as_deref(), Some("https://rekor.sigstore.dev"));
        for visibility in [Some("private"), Some("internal"), None] {
            let github = Services::for_visibility(visibility);
            assert_eq!(github.fulcio, "https://fulcio.githubapp.com");
            assert_eq!(github.rekor, None, "GitHub's instance has no log");
            assert_eq!(
                github.tsa.as_deref(),
                Some("https://timestamp.githubapp.com/api/v1/timestamp")
            );
        }
    }

    #[test]
    fn plain_http_services_need_insecure() {
        let mut services = Services::public_good();
        assert_eq!(services.check_https(false), Ok(()));
        services.tsa = Some("http://tsa.example/api/v1/timestamp".to_owned());
        let err = services.check_https(false).unwrap_err();
        assert!(
            err.contains("the timestamp authority at `http://tsa.example/api/v1/timestamp`")
                && err.contains("insecure: true"),
            "{err}"
        );
        assert_eq!(services.check_https(true), Ok(()));
        services.tsa = None;
        services.fulcio = "HTTP://fulcio.example".to_owned();
        assert!(services.check_https(false).unwrap_err().contains("Fulcio"));
        services.fulcio = "HTTPS://fulcio.example".to_owned();
        assert_eq!(services.check_https(false), Ok(()));
    }

    #[test]
    fn a_trust_config_is_a_client_trust_config_or_a_signing_config() {
        let client = format!(
            r#"{{"mediaType": "{CLIENT_TRUST_CONFIG_MEDIA_TYPE}", "trustedRoot": {{"mediaType": "{TRUSTED_ROOT_MEDIA_TYPE}"}}, "signingConfig": {GITHUB_SIGNING_CONFIG}}}"#
        );
        let config = TrustConfig::read(&client, std::path::Path::new(".")).unwrap();
        assert!(config.trusted_root.is_some());
        assert_eq!(
            config.services().unwrap().fulcio,
            "https://fulcio.githubapp.com"
        );
        let alone = TrustConfig::read(GITHUB_SIGNING_CONFIG, std::path::Path::new(".")).unwrap();
        assert!(alone.trusted_root.is_none());

        let err = TrustConfig::read(r#"{"mediaType": "text/plain"}"#, std::path::Path::new("."))
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "input `sigstore-trust-config`: the input's JSON has media type `text/plain`"
            ),
            "{err}"
        );
        let err = TrustConfig::read("/no/such/file.json", std::path::Path::new(".")).unwrap_err();
        assert!(
            err.to_string().contains("cannot read `/no/such/file.json`"),
            "{err}"
        );
        let root = format!(r#"{{"mediaType": "{TRUSTED_ROOT_MEDIA_TYPE}"}}"#);
        let err = TrustConfig::read(&root, std::path::Path::new("."))
            .unwrap()
            .services()
            .unwrap_err();
        assert!(
            err.to_string().contains("without a signing config"),
            "{err}"
        );

        // A path is read in the working directory, as verify reads the same input.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("trust.json"), &client).unwrap();
        let found = TrustConfig::read("trust.json", dir.path()).unwrap();
        assert!(found.signing_config.is_some());
        assert!(TrustConfig::read("trust.json", std::path::Path::new(".")).is_err());
    }
}
