//! Manifest annotations (`org.opencontainers.image.*`): what the module's own metadata sections
//! say, mapped key for key as wkg maps them on publish, under the GitHub context and what the
//! GitHub API says about the repository, with the user's `annotations` on top.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::context::GithubContext;
use crate::github::RepoMetadata;
use crate::wasm::metadata::EmbeddedMetadata;

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
/// `org.opencontainers.image.authors`
pub const AUTHORS: &str = "org.opencontainers.image.authors";

/// The metadata sections as wkg's publisher maps them (`wasm-pkg-client`'s `oci/publisher.rs`:
/// description, licenses, source, homepage as url, authors; the package version as version),
/// and `revision` as WebAssembly/tool-conventions' Annotations.md maps it. The name is not an
/// annotation: wkg names only the layer after the package.
pub fn from_embedded(embedded: &EmbeddedMetadata) -> BTreeMap<String, String> {
    [
        (VERSION, &embedded.version),
        (DESCRIPTION, &embedded.description),
        (LICENSES, &embedded.licenses),
        (SOURCE, &embedded.source),
        (URL, &embedded.homepage),
        (AUTHORS, &embedded.authors),
        (REVISION, &embedded.revision),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_owned(), value.clone()?)))
    .collect()
}

/// Whether two source URLs name the same repository: case, a trailing `/` and `.git` aside.
fn same_source(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim().trim_end_matches('/');
        s.strip_suffix(".git").unwrap_or(s).to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

/// Whether two revisions name the same commit: one may be the other's abbreviation.
fn same_revision(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim().to_ascii_lowercase(), b.trim().to_ascii_lowercase());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 7 && long.starts_with(&short)
}

/// Formats a time as the OCI annotations and config expect (RFC 3339, UTC, seconds).
pub fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The module's own metadata, then the generated annotations and the repository's metadata,
/// then `user` on top: inputs, then the GitHub context, then the embedded metadata. Where the
/// embedded `source` or `revision` disagrees with the git context, a warning says which won.
pub fn manifest_annotations(
    ctx: &GithubContext,
    created: &DateTime<Utc>,
    version: Option<&str>,
    title: &str,
    repo: &RepoMetadata,
    embedded: &EmbeddedMetadata,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = from_embedded(embedded);
    for (key, section, context, same) in [
        (
            SOURCE,
            &embedded.source,
            ctx.repository_url(),
            same_source as fn(&str, &str) -> bool,
        ),
        (REVISION, &embedded.revision, ctx.sha.clone(), same_revision),
    ] {
        if let (Some(section), Some(context)) = (section, context)
            && !same(section, &context)
        {
            let winner = match user.get(key) {
                Some(given) => format!("input `annotations`' `{given}` wins"),
                None => "the git context wins".to_owned(),
            };
            let field = key.rsplit('.').next().unwrap_or(key);
            tracing::warn!(
                "the module's `{field}` section says `{section}` but the git context says `{context}`: for {key}, {winner}"
            );
        }
    }
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
        let a = manifest_annotations(
            &ctx,
            &created,
            Some("1.2.3"),
            "app",
            &repo,
            &EmbeddedMetadata::default(),
            &user,
        );
        assert_eq!(a[CREATED], "1970-01-01T00:00:00Z");
        assert_eq!(a[SOURCE], "https://github.com/org/app");
        assert_eq!(a[REVISION], "abc");
        assert_eq!(a[VERSION], "1.2.3");
        assert_eq!(a[TITLE], "Custom");
        assert_eq!(a[LICENSES], "MIT");
        assert!(!a.contains_key(DESCRIPTION));
    }

    #[test]
    fn inputs_then_context_then_embedded() {
        let ctx = GithubContext {
            server_url: Some("https://github.com".into()),
            repository: Some("org/app".into()),
            sha: Some("0123456789abcdef".into()),
            ..Default::default()
        };
        let created = DateTime::from_timestamp(0, 0).unwrap();
        let embedded = EmbeddedMetadata {
            name: Some("app".into()),
            version: Some("0.9.0".into()),
            description: Some("embedded".into()),
            authors: Some("Ann <ann@example.com>".into()),
            licenses: Some("MIT".into()),
            source: Some("https://github.com/other/app".into()),
            homepage: Some("https://app.example".into()),
            revision: Some("fedcba9876543210".into()),
        };
        let repo = RepoMetadata {
            description: Some("from the API".into()),
            ..Default::default()
        };
        let user = BTreeMap::from([(LICENSES.to_owned(), "Apache-2.0".to_owned())]);
        let a = manifest_annotations(&ctx, &created, None, "app", &repo, &embedded, &user);
        assert_eq!(a[LICENSES], "Apache-2.0", "input over embedded");
        assert_eq!(a[DESCRIPTION], "from the API", "context over embedded");
        assert_eq!(a[SOURCE], "https://github.com/org/app");
        assert_eq!(a[REVISION], "0123456789abcdef");
        assert_eq!(a[VERSION], "0.9.0", "embedded where nothing else says");
        assert_eq!(a[AUTHORS], "Ann <ann@example.com>");
        assert_eq!(a[URL], "https://app.example");
        assert_eq!(a[TITLE], "app");
        assert!(same_source(
            "https://GitHub.com/org/app.git/",
            "https://github.com/org/app"
        ));
        assert!(same_revision("0123456", "0123456789abcdef"));
        assert!(!same_revision("012", "0123456789abcdef"));
    }
}
