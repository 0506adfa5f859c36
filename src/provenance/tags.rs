//! Tags derived from the git ref when `tags` is not given, as docker/metadata-action derives them:
//! `refs/tags/v1.2.3` gives `1.2.3`, `1.2`, `1`, `latest`; a pre-release only itself; `v0.x` no
//! bare `0`; a branch its sanitized name; a pull request `pr-N`; every run with a commit also
//! `sha-<7 hex>`.

use crate::context::GithubContext;
use crate::reference::Tag;

/// The default tags for `ctx`, in order from most to least specific.
pub fn from_git_ref(ctx: &GithubContext) -> Result<Vec<Tag>, String> {
    let mut tags: Vec<String> = Vec::new();
    match ctx.git_ref.as_deref() {
        Some(r) if r.starts_with("refs/tags/") => {
            let name = &r["refs/tags/".len()..];
            let bare = name.strip_prefix('v').unwrap_or(name);
            match semver::Version::parse(bare) {
                Ok(v) if v.pre.is_empty() => {
                    tags.push(format!("{}.{}.{}", v.major, v.minor, v.patch));
                    tags.push(format!("{}.{}", v.major, v.minor));
                    if v.major > 0 {
                        tags.push(v.major.to_string());
                    }
                    tags.push("latest".to_owned());
                }
                Ok(v) => tags.push(sanitize(&v.to_string())),
                Err(_) => tags.push(sanitize(name)),
            }
        }
        Some(r) if r.starts_with("refs/heads/") => tags.push(sanitize(&r["refs/heads/".len()..])),
        Some(r) if r.starts_with("refs/pull/") => {
            let number = r["refs/pull/".len()..]
                .split('/')
                .next()
                .unwrap_or_default();
            tags.push(format!("pr-{number}"));
        }
        Some(r) => {
            return Err(format!(
                "cannot derive tags from git ref `{r}`; set `tags` explicitly"
            ));
        }
        None => {}
    }
    if let Some(sha) = ctx.sha.as_deref()
        && sha.len() >= 7
        && sha.bytes().all(|b| b.is_ascii_hexdigit())
    {
        tags.push(format!("sha-{}", &sha[..7].to_ascii_lowercase()));
    }
    if tags.is_empty() {
        tags.push("latest".to_owned());
    }
    let mut out: Vec<Tag> = Vec::new();
    for t in tags {
        let tag: Tag = t.parse().map_err(|e| {
            format!(
                "the tag derived from git ref `{}` is invalid: {e}; set `tags` explicitly",
                ctx.git_ref.as_deref().unwrap_or_default()
            )
        })?;
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// Makes a ref name a valid tag: characters outside `[A-Za-z0-9._-]` become `-`, a leading
/// `.` or `-` is dropped, and the result is cut to 128 characters.
pub fn sanitize(name: &str) -> String {
    let replaced: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = replaced.trim_start_matches(['.', '-']);
    trimmed.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(git_ref: Option<&str>, sha: Option<&str>) -> Result<Vec<String>, String> {
        let ctx = GithubContext {
            git_ref: git_ref.map(str::to_owned),
            sha: sha.map(str::to_owned),
            ..Default::default()
        };
        from_git_ref(&ctx).map(|t| t.iter().map(|t| t.to_string()).collect())
    }

    #[test]
    fn table() {
        const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
        let cases: &[(Option<&str>, Option<&str>, &[&str])] = &[
            (
                Some("refs/tags/v1.2.3"),
                Some(SHA),
                &["1.2.3", "1.2", "1", "latest", "sha-0123456"],
            ),
            (
                Some("refs/tags/1.2.3"),
                None,
                &["1.2.3", "1.2", "1", "latest"],
            ),
            (Some("refs/tags/v0.4.1"), None, &["0.4.1", "0.4", "latest"]),
            (
                Some("refs/tags/v2.0.0-rc.1"),
                Some(SHA),
                &["2.0.0-rc.1", "sha-0123456"],
            ),
            (Some("refs/tags/release-5"), None, &["release-5"]),
            (Some("refs/heads/main"), Some(SHA), &["main", "sha-0123456"]),
            (
                Some("refs/heads/feature/new-thing"),
                None,
                &["feature-new-thing"],
            ),
            (
                Some("refs/pull/42/merge"),
                Some(SHA),
                &["pr-42", "sha-0123456"],
            ),
            (None, None, &["latest"]),
        ];
        for (git_ref, sha, want) in cases {
            assert_eq!(tags(*git_ref, *sha).unwrap(), *want, "{git_ref:?}");
        }
    }

    #[test]
    fn unknown_refs_are_refused_with_the_rule() {
        let err = tags(Some("refs/notes/x"), None).unwrap_err();
        assert!(err.contains("set `tags`"), "{err}");
        // A branch name with nothing a tag may hold.
        let err = tags(Some("refs/heads/--/.."), None).unwrap_err();
        assert_eq!(
            err,
            "the tag derived from git ref `refs/heads/--/..` is invalid: a tag cannot be empty; set `tags` explicitly"
        );
    }

    #[test]
    fn sanitize_makes_valid_tags() {
        assert_eq!(sanitize("feat/ä@x"), "feat---x");
        assert_eq!(sanitize("-lead"), "lead");
        assert_eq!(sanitize(&"a".repeat(300)).len(), 128);
    }
}
