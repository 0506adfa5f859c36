//! The GitHub Actions context a run sees (`GITHUB_*`, `SOURCE_DATE_EPOCH`, the event payload),
//! read from an env map rather than the process environment so tests never race.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// Environment variables, as a map the caller owns.
pub type Env = BTreeMap<String, String>;

/// The process environment as an [`Env`] (the binary's edge only).
pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The names of the process environment's variables whose value is not UTF-8, which
/// [`process_env`] leaves out (the binary's edge only).
pub fn non_utf8_vars() -> Vec<String> {
    std::env::vars_os()
        .filter(|(_, v)| v.to_str().is_none())
        .filter_map(|(k, _)| k.into_string().ok())
        .collect()
}

/// Where "now" comes from: the system clock, or a fixed one in tests. The core reads it only
/// when no reproducible time (`SOURCE_DATE_EPOCH`, the commit time) exists.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What the run knows about the repository, the commit and the workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GithubContext {
    /// `GITHUB_SERVER_URL`, e.g. `https://github.com`.
    pub server_url: Option<String>,
    /// `GITHUB_API_URL`, e.g. `https://api.github.com`.
    pub api_url: Option<String>,
    /// `GITHUB_REPOSITORY`, `owner/name`.
    pub repository: Option<String>,
    /// `GITHUB_REPOSITORY_OWNER`.
    pub repository_owner: Option<String>,
    /// `GITHUB_SHA`, the commit.
    pub sha: Option<String>,
    /// `GITHUB_REF`, e.g. `refs/tags/v1.2.3`.
    pub git_ref: Option<String>,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// `GITHUB_RUN_ATTEMPT`.
    pub run_attempt: Option<String>,
    /// `GITHUB_WORKFLOW_REF`, `owner/repo/.github/workflows/x.yml@refs/...`.
    pub workflow_ref: Option<String>,
    /// `GITHUB_ACTOR`.
    pub actor: Option<String>,
    /// `GITHUB_EVENT_NAME`.
    pub event_name: Option<String>,
    /// `GITHUB_EVENT_PATH`, the event payload JSON.
    pub event_path: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`, seconds since the epoch, for reproducible builds.
    pub source_date_epoch: Option<String>,
    /// `GITHUB_REPOSITORY_ID`, the repository's number (survives renames).
    pub repository_id: Option<String>,
    /// `GITHUB_REPOSITORY_OWNER_ID`.
    pub repository_owner_id: Option<String>,
    /// `RUNNER_ENVIRONMENT`: `github-hosted` or `self-hosted`.
    pub runner_environment: Option<String>,
}

impl GithubContext {
    /// Reads the context from `env`; empty variables count as absent.
    pub fn from_env(env: &Env) -> Self {
        let get = |k: &str| {
            env.get(k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        GithubContext {
            server_url: get("GITHUB_SERVER_URL"),
            api_url: get("GITHUB_API_URL"),
            repository: get("GITHUB_REPOSITORY"),
            repository_owner: get("GITHUB_REPOSITORY_OWNER"),
            sha: get("GITHUB_SHA"),
            git_ref: get("GITHUB_REF"),
            run_id: get("GITHUB_RUN_ID"),
            run_attempt: get("GITHUB_RUN_ATTEMPT"),
            workflow_ref: get("GITHUB_WORKFLOW_REF"),
            actor: get("GITHUB_ACTOR"),
            event_name: get("GITHUB_EVENT_NAME"),
            event_path: get("GITHUB_EVENT_PATH").map(PathBuf::from),
            source_date_epoch: get("SOURCE_DATE_EPOCH"),
            repository_id: get("GITHUB_REPOSITORY_ID"),
            repository_owner_id: get("GITHUB_REPOSITORY_OWNER_ID"),
            runner_environment: get("RUNNER_ENVIRONMENT"),
        }
    }

    /// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY`, the source annotation.
    pub fn repository_url(&self) -> Option<String> {
        let server = self.server_url.as_deref().unwrap_or("https://github.com");
        let repo = self.repository.as_deref()?;
        Some(format!("{}/{repo}", server.trim_end_matches('/')))
    }

    /// The repository's short name (`app` of `org/app`).
    pub fn repository_name(&self) -> Option<&str> {
        let repo = self.repository.as_deref()?;
        Some(repo.rsplit('/').next().unwrap_or(repo))
    }

    /// The time the artifact is said to be created: `SOURCE_DATE_EPOCH`, else the commit time
    /// from the event payload. `None` when neither is known.
    pub fn created(&self) -> Result<Option<DateTime<Utc>>, String> {
        if let Some(epoch) = &self.source_date_epoch {
            let secs: i64 = epoch.parse().map_err(|_| {
                format!("SOURCE_DATE_EPOCH `{epoch}` must be a whole number of seconds since 1970")
            })?;
            return DateTime::from_timestamp(secs, 0)
                .map(Some)
                .ok_or_else(|| format!("SOURCE_DATE_EPOCH `{epoch}` is out of range"));
        }
        Ok(self.event_commit_time())
    }

    fn event_commit_time(&self) -> Option<DateTime<Utc>> {
        let text = std::fs::read_to_string(self.event_path.as_ref()?).ok()?;
        let event: serde_json::Value = serde_json::from_str(&text).ok()?;
        let stamp = event
            .pointer("/head_commit/timestamp")
            .or_else(|| event.pointer("/workflow_run/head_commit/timestamp"))?
            .as_str()?;
        DateTime::parse_from_rfc3339(stamp)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn source_date_epoch_wins() {
        let ctx = GithubContext::from_env(&env(&[("SOURCE_DATE_EPOCH", "1700000000")]));
        let t = ctx.created().unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20+00:00");
        let bad = GithubContext::from_env(&env(&[("SOURCE_DATE_EPOCH", "yesterday")]));
        assert!(bad.created().unwrap_err().contains("SOURCE_DATE_EPOCH"));
    }

    #[test]
    fn commit_time_from_the_event_payload() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(
            &event,
            r#"{"head_commit":{"timestamp":"2024-05-01T12:00:00+02:00"}}"#,
        )
        .unwrap();
        let ctx = GithubContext::from_env(&env(&[("GITHUB_EVENT_PATH", event.to_str().unwrap())]));
        let t = ctx.created().unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2024-05-01T10:00:00+00:00");
    }

    #[test]
    fn repository_url_and_name() {
        let ctx = GithubContext::from_env(&env(&[
            ("GITHUB_SERVER_URL", "https://ghe.example/"),
            ("GITHUB_REPOSITORY", "org/app"),
        ]));
        assert_eq!(ctx.repository_url().unwrap(), "https://ghe.example/org/app");
        assert_eq!(ctx.repository_name(), Some("app"));
    }
}
