//! Manifest annotations from the GitHub context (`org.opencontainers.image.*`), then what the
//! GitHub API says about the repository, with the user's `annotations` merged on top.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::context::GithubContext;
use crate::github::RepoMetadata;

/// `org.opencontainers.image.created`
pub const CREATED: &str = "org.opencontainers.image.created";
/// `org.opencontainers.image.source`
pub const SOURCE: &str = "org.opencontainers.image.source";
/// `org.opencontainers.image.revision`
pub const REVISION: &str = "org.opencontainers.image.revision";
/// `org.opencontainers.image.version`
pub const VERSION: &str = "org.opencontainers.image.version";
pub use crate::artifact::TITLE;
/// `org.opencontainers.image.description`
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
/// `org.opencontainers.image.licenses` (an SPDX expression)
pub const LICENSES: &str = "org.opencontainers.image.licenses";
/// `org.opencontainers.image.url`
pub const URL: &str = "org.opencontainers.image.url";

/// Formats a time as the OCI annotations and config expect (RFC 3339, UTC, seconds).
pub fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The generated annotations, then the repository's own metadata, then `user` on top (a user
/// value replaces a generated one).
pub fn manifest_annotations(
    ctx: &GithubContext,
    created: &DateTime<Utc>,
    version: Option<&str>,
    title: &str,
    repo: &RepoMetadata,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert(CREATED.to_owned(), rfc3339(created));
    if let Some(source) = ctx.repository_url() {
        out.insert(SOURCE.to_owned(), source);
    }
    if let Some(sha) = &ctx.sha {
        out.insert(REVISION.to_owned(), sha.clone());
    }
    if let Some(version) = version {
        out.insert(VERSION.to_owned(), version.to_owned());
    }
    out.insert(TITLE.to_owned(), title.to_owned());
    for (key, value) in [
        (DESCRIPTION, &repo.description),
        (LICENSES, &repo.license),
        (URL, &repo.url),
    ] {
        if let Some(value) = value {
            out.insert(key.to_owned(), value.clone());
        }
    }
    out.extend(user.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_then_user_on_top() {
        let ctx = GithubContext {
            server_url: Some("https://github.com".into()),
            repository: Some("org/app".into()),
            sha: Some("abc".into()),
            ..Default::default()
        };
        let created = DateTime::from_timestamp(0, 0).unwrap();
        let user = BTreeMap::from([(TITLE.to_owned(), "Custom".to_owned())]);
        let repo = RepoMetadata {
            license: Some("MIT".into()),
            ..Default::default()
        };
        let a = manifest_annotations(&ctx, &created, Some("1.2.3"), "app", &repo, &user);
        assert_eq!(a[CREATED], "1970-01-01T00:00:00Z");
        assert_eq!(a[SOURCE], "https://github.com/org/app");
        assert_eq!(a[REVISION], "abc");
        assert_eq!(a[VERSION], "1.2.3");
        assert_eq!(a[TITLE], "Custom");
        assert_eq!(a[LICENSES], "MIT");
        assert!(!a.contains_key(DESCRIPTION));
    }
}
