//! The GitHub API seam through a local stand-in (the API cannot run here), with the response
//! shapes GitHub sends: found, 404, 403 and no answer. The repository's description, license
//! and URL become annotations; any failure is a warning and the push still succeeds.

use crate::common;

use std::time::{Duration, Instant};

use common::github_fake::{Answer, COMMIT, FORBIDDEN, FakeGithub, NOT_FOUND, REPOSITORY};
use common::*;
use serde_json::Value;

const TOKEN: &str = "ghs_fakeTokenForTheTestOnly0123456789";

/// Pushes to an OCI layout with the API at `api_url`; returns the run and the annotations.
fn push(api_url: &str, token: &str) -> (Run, Value) {
    push_with(api_url, token, &[])
}

/// The same, with `remove` taken out of the runner's environment.
fn push_with(api_url: &str, token: &str, remove: &[&str]) -> (Run, Value) {
    let ws = Workspace::new();
    let mut env = ws.multiply_env("oci:out", &[("tags", "1.0.0"), ("github-token", token)]);
    env.insert("GITHUB_API_URL".into(), api_url.to_owned());
    // Debug logging on: the token must not show there either.
    env.insert("RUNNER_DEBUG".into(), "1".to_owned());
    for name in remove {
        env.remove(*name);
    }
    let run = ws.run_action(&env);
    assert!(
        run.success(),
        "an API failure never fails the push: {run:?}"
    );
    let digest = ws.outputs()["digest"].clone();
    let manifest = std::fs::read(ws.root().join("out/blobs/sha256").join(&digest[7..])).unwrap();
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    (run, manifest["annotations"].clone())
}

fn warnings(run: &Run) -> Vec<&str> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with("::warning::"))
        .collect()
}

#[test]
fn found_repository_fills_description_licenses_and_url() {
    let api = FakeGithub::start(Answer::Json(200, REPOSITORY.to_owned()));
    let (run, annotations) = push(&api.api_url(), TOKEN);
    assert_eq!(
        annotations["org.opencontainers.image.description"],
        "Multiplies two numbers, in Wasm"
    );
    assert_eq!(
        annotations["org.opencontainers.image.licenses"],
        "Apache-2.0"
    );
    assert_eq!(
        annotations["org.opencontainers.image.url"],
        "https://github.com/acme/multiply"
    );
    assert!(warnings(&run).is_empty(), "{run:?}");

    // GitHub Enterprise's path prefix is kept, and the token goes only in the header.
    let requests = api.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0]
            .line
            .starts_with("GET /api/v3/repos/acme/multiply "),
        "{requests:?}"
    );
    let auth = requests[0]
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str());
    assert_eq!(auth, Some(format!("Bearer {TOKEN}").as_str()));
    // The token is masked and shows nowhere else, debug logging included.
    assert!(run.stdout.contains("::debug::"), "{run:?}");
    assert!(
        run.stdout.starts_with(&format!("::add-mask::{TOKEN}\n")),
        "{run:?}"
    );
    assert_eq!(run.all().matches(TOKEN).count(), 1, "{run:?}");
}

#[test]
fn not_found_and_forbidden_are_warnings() {
    for (status, body, expect) in [(404, NOT_FOUND, "404"), (403, FORBIDDEN, "403")] {
        let api = FakeGithub::start(Answer::Json(status, body.to_owned()));
        let (run, annotations) = push(&api.api_url(), TOKEN);
        let warnings = warnings(&run);
        assert_eq!(warnings.len(), 1, "{run:?}");
        assert!(warnings[0].contains("acme/multiply"), "{run:?}");
        assert!(warnings[0].contains(expect), "{run:?}");
        assert!(
            annotations
                .get("org.opencontainers.image.description")
                .is_none()
        );
        assert!(
            annotations
                .get("org.opencontainers.image.licenses")
                .is_none()
        );
        // The generated annotations are still there.
        assert_eq!(
            annotations["org.opencontainers.image.source"],
            "https://github.com/acme/multiply"
        );
    }
    let api = FakeGithub::start(Answer::Json(403, FORBIDDEN.to_owned()));
    let (run, _) = push(&api.api_url(), TOKEN);
    assert!(
        run.stdout
            .contains("Resource not accessible by integration"),
        "{run:?}"
    );
}

#[test]
fn an_api_that_does_not_answer_is_given_up_quickly() {
    let api = FakeGithub::start(Answer::Hang);
    let started = Instant::now();
    let (run, annotations) = push(&api.api_url(), TOKEN);
    assert!(started.elapsed() < Duration::from_secs(30), "{run:?}");
    let warnings = warnings(&run);
    assert_eq!(warnings.len(), 1, "{run:?}");
    assert!(warnings[0].contains("no answer within"), "{run:?}");
    assert!(annotations.get("org.opencontainers.image.url").is_none());
}

#[test]
fn no_token_no_request() {
    let api = FakeGithub::start(Answer::Json(200, REPOSITORY.to_owned()));
    let (run, annotations) = push(&api.api_url(), "");
    assert!(warnings(&run).is_empty(), "{run:?}");
    assert!(api.requests().is_empty());
    assert!(
        annotations
            .get("org.opencontainers.image.description")
            .is_none()
    );
}

#[test]
fn without_source_date_epoch_or_git_the_commit_time_comes_from_the_api() {
    let routes = || {
        Answer::Routes(vec![
            ("/commits/0123456789abcdef", 200, COMMIT.to_owned()),
            ("/repos/acme/multiply ", 200, REPOSITORY.to_owned()),
        ])
    };
    let api = FakeGithub::start(routes());
    let (run, annotations) = push_with(&api.api_url(), TOKEN, &["SOURCE_DATE_EPOCH"]);
    assert!(warnings(&run).is_empty(), "{run:?}");
    assert_eq!(
        annotations["org.opencontainers.image.created"], "2024-05-02T08:30:00Z",
        "the committer's time"
    );
    assert!(
        api.requests().iter().any(|r| r.line.starts_with(
            "GET /api/v3/repos/acme/multiply/commits/0123456789abcdef0123456789abcdef01234567 "
        )),
        "{:?}",
        api.requests()
    );
    // Another run (the clock has moved on) gives the same annotations, hence the same digest.
    let (_, again) = push_with(
        &FakeGithub::start(routes()).api_url(),
        TOKEN,
        &["SOURCE_DATE_EPOCH"],
    );
    assert_eq!(again, annotations);

    // When the API cannot say, the clock is the last resort, with a warning.
    let refusing = FakeGithub::start(Answer::Json(403, FORBIDDEN.to_owned()));
    let (run, _) = push_with(&refusing.api_url(), TOKEN, &["SOURCE_DATE_EPOCH"]);
    assert!(
        warnings(&run)
            .iter()
            .any(|w| w.contains("the digest will differ between runs")),
        "{run:?}"
    );
}
