//! Reproducible digests: pushes an hour apart (an injected clock) give byte-identical manifests
//! and provenance when a commit time exists (event payload or git), and the clock is not read
//! at all then. Against the real registry.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use common::*;
use wasm_oci::context::Clock;
use wasm_oci::input;
use wasm_oci::inputs::Inputs;
use wasm_oci::push::PushRequest;

/// A clock stuck at one time that counts how often it is read.
struct FakeClock {
    now: DateTime<Utc>,
    reads: AtomicUsize,
}

impl FakeClock {
    fn at(now: DateTime<Utc>) -> Self {
        FakeClock {
            now,
            reads: AtomicUsize::new(0),
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.now
    }
}

/// The runner's context without `SOURCE_DATE_EPOCH`.
fn context(event: Option<&Path>) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/multiply"),
        ("GITHUB_REPOSITORY_OWNER", "acme"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_RUN_ID", "7"),
        (
            "GITHUB_WORKFLOW_REF",
            "acme/multiply/.github/workflows/ci.yml@refs/heads/main",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(event) = event {
        env.insert("GITHUB_EVENT_PATH".into(), event.display().to_string());
    }
    env
}

/// Pushes multiply.wasm from `workdir` with `clock`; returns (digest, provenance digest).
fn push_at(
    registry: &Registry,
    workdir: &Path,
    env: &BTreeMap<String, String>,
    clock: &FakeClock,
) -> (String, String) {
    std::fs::copy(multiply_wasm(), workdir.join("multiply.wasm")).unwrap();
    let mut inputs = Inputs::default();
    inputs.set(input::IMAGE, &format!("{}/acme/repro", registry.host()));
    inputs.set(input::PATH, "multiply.wasm");
    inputs.set(input::WORKING_DIRECTORY, &workdir.display().to_string());
    inputs.set(input::INSECURE, "true");
    inputs.set(input::TAGS, "main");
    let request = PushRequest::from_inputs(&inputs, env).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcome = runtime
        .block_on(wasm_oci::push::push_with_clock(&request, env, clock))
        .unwrap();
    (
        outcome.digest.to_string(),
        outcome.provenance.unwrap().to_string(),
    )
}

fn created_annotation(registry: &Registry, digest: &str) -> String {
    let (bytes, _) = registry.manifest("acme/repro", digest).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    manifest["annotations"]["org.opencontainers.image.created"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn noon() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .to_utc()
}

#[test]
fn the_event_commit_time_makes_runs_an_hour_apart_identical() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let event = ws.dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"head_commit":{"timestamp":"2024-05-01T12:00:00+02:00"}}"#,
    )
    .unwrap();
    let env = context(Some(&event));

    let early = FakeClock::at(noon());
    let late = FakeClock::at(noon() + Duration::hours(1));
    let first = push_at(&registry, &ws.root(), &env, &early);
    let second = push_at(&registry, &ws.root(), &env, &late);
    assert_eq!(first, second, "manifest and provenance digests repeat");
    assert_eq!(
        early.reads.load(Ordering::SeqCst),
        0,
        "the clock is never read"
    );
    assert_eq!(
        late.reads.load(Ordering::SeqCst),
        0,
        "the clock is never read"
    );
    assert_eq!(
        created_annotation(&registry, &first.0),
        "2024-05-01T10:00:00Z"
    );
}

#[test]
fn the_git_commit_time_makes_runs_an_hour_apart_identical() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(ws.root())
            .env("GIT_AUTHOR_DATE", "2025-01-02T03:04:05Z")
            .env("GIT_COMMITTER_DATE", "2025-01-02T03:04:05Z")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .expect("git is installed (`.ci/run`)");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    ws.write("README", b"x");
    git(&["add", "README"]);
    git(&["commit", "-q", "-m", "one"]);
    let env = context(None);

    let early = FakeClock::at(noon());
    let late = FakeClock::at(noon() + Duration::hours(1));
    let first = push_at(&registry, &ws.root(), &env, &early);
    let second = push_at(&registry, &ws.root(), &env, &late);
    assert_eq!(first, second);
    assert_eq!(
        early.reads.load(Ordering::SeqCst) + late.reads.load(Ordering::SeqCst),
        0
    );
    assert_eq!(
        created_annotation(&registry, &first.0),
        "2025-01-02T03:04:05Z"
    );
}

#[test]
fn without_a_commit_time_the_injected_clock_is_what_changes_the_digest() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let env = context(None);
    let early = FakeClock::at(noon());
    let late = FakeClock::at(noon() + Duration::hours(1));
    let first = push_at(&registry, &ws.root(), &env, &early);
    let second = push_at(&registry, &ws.root(), &env, &late);
    assert!(early.reads.load(Ordering::SeqCst) >= 1);
    assert_ne!(first.0, second.0);
    assert_eq!(
        created_annotation(&registry, &second.0),
        "2026-03-01T13:00:00Z"
    );
}
