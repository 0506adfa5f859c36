//! Who may have signed a keyless bundle: the identity policy in cosign's vocabulary (the
//! certificate's SAN exactly or by regular expression, its OIDC issuer), the defaults taken from
//! the expected source, and the checks of a certificate against it, Fulcio's GitHub extensions
//! (source repository and its digest) included.

use sigstore_verify::crypto::CertificateInfo;

use super::report::Check;
use crate::error::{Error, Result};
use crate::input;

/// The OIDC issuer of GitHub Actions' workload identity tokens.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Who may have signed: the certificate's SAN, its OIDC issuer, and Fulcio's GitHub extensions.
#[derive(Debug, Clone, Default)]
pub struct IdentityPolicy {
    /// The SAN, exactly (`certificate-identity`).
    pub identity: Option<String>,
    /// The SAN, as a regular expression (`certificate-identity-regexp`), unanchored as cosign's.
    pub identity_regexp: Option<regex::Regex>,
    /// The OIDC issuer (`certificate-oidc-issuer`); GitHub Actions' when not given.
    pub issuer: Option<String>,
}

/// The identity policy with the defaults from the expected source and revision filled in.
#[derive(Debug, Clone)]
pub(super) struct Identity<'a> {
    pub(super) policy: &'a IdentityPolicy,
    /// The repository URL the workflow and the source repository extension must name.
    pub(super) source: Option<&'a str>,
    /// The commit the source repository digest extension must name.
    pub(super) revision: Option<&'a str>,
}

/// The certificate's SAN and issuer against the policy, and Fulcio's GitHub extensions (source
/// repository URI, source repository digest) against the expected source and revision.
pub(super) fn identity_checks(info: &CertificateInfo, want: &Identity<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    let san = info.identity.as_ref().map(|s| s.as_str().to_owned());
    let found = |v: &Option<String>| match v {
        Some(v) => format!("`{v}`"),
        None => "none".to_owned(),
    };
    let name = "certificate identity";
    checks.push(
        match (&want.policy.identity, &want.policy.identity_regexp, want.source) {
            (Some(exact), _, _) => match &san {
                Some(s) if s == exact => Check::pass(name, format!("`{s}`")),
                _ => Check::fail(name, format!("expected `{exact}`, found {}", found(&san))),
            },
            (None, Some(re), _) => match &san {
                Some(s) if re.is_match(s) => Check::pass(name, format!("`{s}` matches `{re}`")),
                _ => Check::fail(
                    name,
                    format!("expected a match of `{re}`, found {}", found(&san)),
                ),
            },
            (None, None, Some(source)) => {
                let prefix = workflow_prefix(source);
                match &san {
                    Some(s) if s.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase()) => {
                        Check::pass(name, format!("`{s}`, a workflow of `{source}`"))
                    }
                    _ => Check::fail(
                        name,
                        format!(
                            "expected a workflow of `{source}` (`{prefix}...`), found {}",
                            found(&san)
                        ),
                    ),
                }
            }
            (None, None, None) => Check::skip(
                name,
                format!(
                    "any identity: no `certificate-identity` and no source to expect; the certificate names {}",
                    found(&san)
                ),
            ),
        },
    );
    let name = "certificate issuer";
    let issuer = want
        .policy
        .issuer
        .as_deref()
        .unwrap_or(GITHUB_ACTIONS_ISSUER);
    checks.push(match &info.issuer {
        Some(found) if found == issuer => Check::pass(name, format!("`{found}`")),
        other => Check::fail(name, format!("expected `{issuer}`, found {}", found(other))),
    });
    let claims = &info.ci_claims;
    let name = "certificate source";
    // A workflow named by its SAN alone signs only in its own repository: a public
    // repository's reusable workflow runs in any repository that calls it, under its name.
    let named = want.policy.identity.is_some() || want.policy.identity_regexp.is_some();
    let source = match (want.source, named) {
        (Some(source), _) => Some(source),
        (None, true) => san.as_deref().and_then(workflow_repository),
        (None, false) => None,
    };
    checks.push(match (source, &claims.source_repository_uri) {
        (None, uri) => Check::skip(
            name,
            format!("no source to expect; the certificate names {}", found(uri)),
        ),
        (Some(w), Some(uri)) if same_repository(w, uri) => {
            Check::pass(name, format!("source repository `{uri}`"))
        }
        (Some(w), uri) => Check::fail(
            name,
            format!(
                "expected source repository `{w}`, found {} (extension 1.3.6.1.4.1.57264.1.12){}",
                found(uri),
                match want.source {
                    Some(_) => "",
                    None => "; a workflow named by its identity alone must run in its own repository: name the repository it builds with `expect-source`",
                }
            ),
        ),
    });
    let name = "certificate revision";
    checks.push(match (want.revision, &claims.source_repository_digest) {
        (None, digest) => Check::skip(
            name,
            format!("no revision to expect; the certificate names {}", found(digest)),
        ),
        (Some(w), Some(digest)) if digest.eq_ignore_ascii_case(w) => {
            Check::pass(name, format!("source repository digest `{digest}`"))
        }
        (Some(w), digest) => Check::fail(
            name,
            format!(
                "expected source repository digest `{w}`, found {} (extension 1.3.6.1.4.1.57264.1.13)",
                found(digest)
            ),
        ),
    });
    checks
}

/// `https://github.com/ORG/REPO` of a GitHub Actions workflow's SAN
/// (`https://github.com/ORG/REPO/.github/workflows/release.yml@refs/tags/v1`).
pub(super) fn workflow_repository(san: &str) -> Option<&str> {
    san.split_once("/.github/workflows/")
        .map(|(repository, _)| repository)
        .filter(|r| r.starts_with("https://"))
}

/// `https://github.com/ORG/REPO/.github/workflows/`: the SAN prefix of that repository's
/// workflows.
pub(super) fn workflow_prefix(source: &str) -> String {
    let repo = source.trim_end_matches('/').trim_end_matches(".git");
    format!("{repo}/.github/workflows/")
}

/// Parses `certificate-identity-regexp`.
pub(super) fn identity_regexp_input(value: &str) -> Result<regex::Regex> {
    regex::Regex::new(value).map_err(|e| {
        Error::input(
            input::CERTIFICATE_IDENTITY_REGEXP,
            format!("not a regular expression: {e}"),
        )
    })
}

/// Repository URLs compare without a trailing `/` or `.git`, and case-insensitively.
pub(super) fn same_repository(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim_end_matches('/')
            .trim_end_matches(".git")
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_prefix_is_the_repositorys_workflows_folder() {
        assert_eq!(
            workflow_prefix("https://github.com/acme/app.git"),
            "https://github.com/acme/app/.github/workflows/"
        );
        assert_eq!(
            workflow_prefix("https://github.com/acme/app/"),
            "https://github.com/acme/app/.github/workflows/"
        );
    }
}
