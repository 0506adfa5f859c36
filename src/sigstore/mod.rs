//! Sigstore signing of the provenance: keyless (a short-lived Fulcio certificate for the job's
//! OIDC identity, a Rekor entry and/or an RFC 3161 timestamp) or with the `signing-key`, each
//! packaged as a Sigstore bundle v0.3, the format `cosign`, `gh attestation verify` and the
//! admission controllers built on them read.
//!
//! Which Sigstore instance signs comes from Sigstore's own formats: the `sigstore-trust-config`
//! input (a client trust config or a signing config), else the instance `actions/attest` picks
//! from the repository's visibility (public-good for public repositories, GitHub's own for
//! private and internal ones).

pub mod bundle;
pub mod instance;
pub mod keyless;

use std::str::FromStr;

use tracing::info;

use crate::context::{Env, GithubContext};
use crate::error::{Error, Result};
use crate::input;

pub use instance::{Services, TrustConfig};
pub use keyless::{Signed, TokenRequest};

pub use crate::provenance::referrer::BUNDLE_MEDIA_TYPE;

/// The `sign` input: keyless signing when the job can mint an OIDC token (`auto`), always
/// (`true`: a job without the token is an error), or never (`false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignMode {
    /// Sign when `ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN` are set.
    #[default]
    Auto,
    /// Sign, or fail before anything is pushed.
    Always,
    /// Never sign keylessly.
    Never,
}

impl FromStr for SignMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(SignMode::Auto),
            "true" | "True" | "TRUE" => Ok(SignMode::Always),
            "false" | "False" | "FALSE" => Ok(SignMode::Never),
            other => Err(format!(
                "`{other}` is not a signing mode; use `auto`, `true` or `false`"
            )),
        }
    }
}

/// What keyless signing will use: the services and how to get the job's OIDC token.
#[derive(Debug, Clone)]
pub struct Keyless {
    /// Fulcio, the log and the timestamp authority.
    pub services: Services,
    /// The runner's token endpoint.
    pub token: TokenRequest,
}

/// The permission that lets a job mint OIDC tokens.
const PERMISSION_HINT: &str = "add `permissions: id-token: write` to the job";

/// Decides, before anything is built or pushed, whether the provenance is signed keylessly and
/// with which services, from the push's `sign`, `provenance`, `dry-run` and
/// `sigstore-trust-config` inputs. `None` when it is not; an error when `sign: true` cannot be
/// honoured, or when a service is named in plain HTTP without `insecure`.
pub fn plan(
    sign: SignMode,
    provenance: bool,
    dry_run: bool,
    trust_config: Option<&TrustConfig>,
    insecure: bool,
    env: &Env,
    ctx: &GithubContext,
) -> Result<Option<Keyless>> {
    let forced = sign == SignMode::Always;
    if sign == SignMode::Never || !provenance {
        return Ok(None);
    }
    if dry_run {
        // A dry run publishes nothing, and a transparency-log entry is public.
        info!("dry run: the provenance is not signed keylessly");
        return Ok(None);
    }
    let Some(token) = TokenRequest::from_env(env) else {
        if forced {
            return Err(Error::input(
                input::SIGN,
                format!(
                    "keyless signing needs the job's OIDC token, and ACTIONS_ID_TOKEN_REQUEST_URL is not set; {PERMISSION_HINT}"
                ),
            ));
        }
        if env.get("GITHUB_ACTIONS").map(String::as_str) == Some("true") {
            info!(
                target: crate::NOTICE,
                title = "Provenance not signed",
                "the provenance is not signed keylessly: this job cannot mint an OIDC token, and a deploy's `verify` refuses an artifact whose provenance no signature covers (unless told `require-signature: false`); {PERMISSION_HINT} to sign it keylessly with Sigstore (or set `sign: false` to silence this)"
            );
        }
        return Ok(None);
    };
    let services = match trust_config {
        Some(config) => config.services()?,
        None => Services::for_visibility(instance::repository_visibility(ctx).as_deref()),
    };
    services
        .check_https(insecure)
        .map_err(|e| Error::input(input::SIGSTORE_TRUST_CONFIG, e))?;
    info!(
        "signing keylessly with {}: Fulcio {}{}{}",
        services.name,
        services.fulcio,
        services
            .rekor
            .as_deref()
            .map(|r| format!(", Rekor {r}"))
            .unwrap_or_default(),
        services
            .tsa
            .as_deref()
            .map(|t| format!(", timestamp authority {t}"))
            .unwrap_or_default(),
    );
    Ok(Some(Keyless { services, token }))
}
