//! The GitHub REST API seam: what the repository says about itself (description, license, home
//! page) for the manifest annotations, a commit's time for a reproducible `created`, and the
//! repository's attestation store for signed provenance bundles, read
//! through octocrab from `GITHUB_API_URL`, so GitHub Enterprise Server works too. Optional by nature: every failure is returned as an
//! [`ApiError`] that the caller logs as a warning, and a short timeout bounds the wait.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::secret::Secret;

/// How long the whole request may take before it is given up.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What the repository says about itself; each part only when it has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoMetadata {
    /// The repository's description.
    pub description: Option<String>,
    /// The license's SPDX identifier (`Apache-2.0`); none for `NOASSERTION`.
    pub license: Option<String>,
    /// The repository's web page (`html_url`).
    pub url: Option<String>,
}

/// Why the repository could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API does not know the repository, or the token cannot see it.
    #[error("repository not found or not visible to the token (404)")]
    NotFound,
    /// The token was refused.
    #[error("the token was refused ({status}): {message}")]
    Refused {
        /// 401 or 403.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// Any other answer.
    #[error("the API answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// No answer within [`TIMEOUT`].
    #[error("no answer within {} seconds", .0.as_secs())]
    Timeout(Duration),
    /// The API could not be reached or spoke nonsense.
    #[error("{0}")]
    Transport(String),
}

/// Reads `owner/name` from the API at `api_url` with `token`, giving up after `timeout`.
pub async fn repository_metadata(
    api_url: &str,
    repository: &str,
    token: &Secret,
    timeout: Duration,
) -> Result<RepoMetadata, ApiError> {
    let (owner, name) = split(repository)?;
    tracing::debug!("GET {}/repos/{repository}", api_url.trim_end_matches('/'));
    let client = client(api_url, token, timeout)?;
    let repo = tokio::time::timeout(timeout, client.repos(owner, name).get())
        .await
        .map_err(|_| ApiError::Timeout(timeout))?
        .map_err(|e| map_error(e, timeout))?;
    Ok(RepoMetadata {
        description: repo.description.filter(|d| !d.trim().is_empty()),
        license: repo
            .license
            .map(|l| l.spdx_id)
            .filter(|id| !id.is_empty() && id != "NOASSERTION"),
        url: repo.html_url.map(|u| u.to_string()),
    })
}

/// The committer time of commit `sha` in `owner/name`: the reproducible `created` when the
/// run has neither an event payload with it nor `git` (the action's container has no `git`).
pub async fn commit_time(
    api_url: &str,
    repository: &str,
    sha: &str,
    token: &Secret,
    timeout: Duration,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let (owner, name) = split(repository)?;
    tracing::debug!(
        "GET {}/repos/{repository}/commits/{sha}",
        api_url.trim_end_matches('/')
    );
    let client = client(api_url, token, timeout)?;
    let commit = tokio::time::timeout(timeout, client.commits(owner, name).get(sha))
        .await
        .map_err(|_| ApiError::Timeout(timeout))?
        .map_err(|e| map_error(e, timeout))?;
    Ok(commit.commit.committer.and_then(|c| c.date))
}

fn split(repository: &str) -> Result<(&str, &str), ApiError> {
    repository
        .split_once('/')
        .ok_or_else(|| ApiError::Transport(format!("`{repository}` is not `owner/name`")))
}

fn client(
    api_url: &str,
    token: &Secret,
    timeout: Duration,
) -> Result<octocrab::Octocrab, ApiError> {
    octocrab::Octocrab::builder()
        .base_uri(api_url.trim_end_matches('/'))
        .map_err(|e| ApiError::Transport(format!("`{api_url}` is not a URL: {e}")))?
        .personal_token(token.expose().to_owned())
        .set_connect_timeout(Some(timeout))
        .set_read_timeout(Some(timeout))
        .build()
        .map_err(|e| map_error(e, timeout))
}

/// Maps octocrab's errors: the one place that knows their shapes.
/// One API failure as the caller reports it; `timeout` is the bound the request was given.
fn map_error(e: octocrab::Error, timeout: Duration) -> ApiError {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let message = source.message.trim().to_owned();
            match status {
                404 => ApiError::NotFound,
                401 | 403 => ApiError::Refused { status, message },
                _ => ApiError::Status { status, message },
            }
        }
        other => {
            let mut source: &dyn std::error::Error = &other;
            while let Some(next) = source.source() {
                source = next;
            }
            let text = source.to_string();
            if text.contains("timed out") || text.contains("deadline has elapsed") {
                ApiError::Timeout(timeout)
            } else {
                ApiError::Transport(text)
            }
        }
    }
}

/// Stores a Sigstore bundle in `owner/name`'s attestations (`POST /repos/{owner}/{name}/
/// attestations` with `{"bundle": ...}`, which `gh attestation verify` reads); returns the
/// attestation's id. Needs a token with `attestations: write`.
pub async fn upload_attestation(
    api_url: &str,
    repository: &str,
    token: &Secret,
    bundle: &[u8],
    timeout: Duration,
) -> Result<u64, ApiError> {
    let (owner, name) = split(repository)?;
    let bundle: serde_json::Value = serde_json::from_slice(bundle)
        .map_err(|e| ApiError::Transport(format!("the bundle is not JSON: {e}")))?;
    let route = format!("/repos/{owner}/{name}/attestations");
    tracing::debug!("POST {}{route}", api_url.trim_end_matches('/'));
    let client = client(api_url, token, timeout)?;
    let answer: serde_json::Value = tokio::time::timeout(
        timeout,
        client.post(&route, Some(&serde_json::json!({ "bundle": bundle }))),
    )
    .await
    .map_err(|_| ApiError::Timeout(timeout))?
    .map_err(|e| map_error(e, timeout))?;
    answer["id"].as_u64().ok_or_else(|| ApiError::Status {
        status: 201,
        message: format!("the answer has no attestation id: {answer}"),
    })
}

/// A container package as the API describes it: who can pull it, and which repository it is
/// linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `public`, `private` or `internal`.
    pub visibility: String,
    /// The linked repository's `owner/name`; `None` when the package is linked to none.
    pub repository: Option<String>,
    /// `orgs` or `users`: where the package lives in the API and on the web.
    pub scope: &'static str,
}

/// Reads the container package `name` (`app`, or `tools/app`) of `owner`, an organization or a
/// user (`GET /orgs/{owner}/packages/container/{name}`, else `/users/...`). Needs a token that
/// can read the package (the job's token with `packages: read`).
pub async fn container_package(
    api_url: &str,
    owner: &str,
    name: &str,
    token: &Secret,
    timeout: Duration,
) -> Result<Package, ApiError> {
    let client = client(api_url, token, timeout)?;
    // A package name's `/` is one path segment in the API.
    let encoded = name.replace('/', "%2F");
    for scope in ["orgs", "users"] {
        let route = format!("/{scope}/{owner}/packages/container/{encoded}");
        tracing::debug!("GET {}{route}", api_url.trim_end_matches('/'));
        let answer = tokio::time::timeout(
            timeout,
            client.get::<serde_json::Value, _, ()>(&route, None),
        )
        .await
        .map_err(|_| ApiError::Timeout(timeout))?
        .map_err(|e| map_error(e, timeout));
        match answer {
            Ok(package) => {
                return Ok(Package {
                    visibility: package["visibility"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    repository: package["repository"]["full_name"]
                        .as_str()
                        .map(str::to_owned),
                    scope,
                });
            }
            // Not an organization's: a user's, perhaps.
            Err(ApiError::NotFound) if scope == "orgs" => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_names_the_bound_the_request_was_given() {
        let elapsed = octocrab::Error::Service {
            source: Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "operation timed out",
            )),
            backtrace: std::backtrace::Backtrace::disabled(),
        };
        let bound = Duration::from_secs(2);
        let error = map_error(elapsed, bound);
        assert!(
            matches!(error, ApiError::Timeout(t) if t == bound),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "no answer within 2 seconds");
    }
}
