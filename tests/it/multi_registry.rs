//! One push, several registries: two real registries with different credentials get the same
//! manifest digest and provenance; one that refuses the push fails the step by name while the
//! other keeps the complete artifact; docker/metadata-action's tags, as its output or its
//! environment, name the registries; and after a push to ghcr.io (reached through an HTTP
//! proxy, as a runner behind one reaches it) the package's visibility and link are read from
//! the GitHub API stand-in.

use crate::common;

use std::collections::BTreeMap;

use base64::Engine as _;
use common::github_fake::{Answer, FakeGithub};
use common::leaks::{assert_no_secrets, loud};
use common::proxy::{Fault, FaultProxy};
use common::*;

const ALICE: (&str, &str) = ("alice", "alice-pw-7f3a");
const BOB: (&str, &str) = ("bob", "bob-pw-c41e");

/// A docker config in the workspace's HOME with `user`'s credentials for `host`.
fn docker_login(ws: &Workspace, host: &str, (user, password): (&str, &str)) {
    let dir = ws.dir.path().join("home/.docker");
    std::fs::create_dir_all(&dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let json = serde_json::json!({ "auths": { host: { "auth": auth } } });
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
}

/// The manifest digest `tag` points at in `repo`, if any.
fn tagged(registry: &Registry, repo: &str, tag: &str) -> Option<String> {
    registry
        .manifest(repo, tag)
        .map(|(bytes, _)| sha256(&bytes))
}

/// Whether `repo` holds the manifest `digest`, its config and layers, and lists a provenance
/// referrer in the fallback tag: the complete artifact.
fn holds_complete(registry: &Registry, repo: &str, digest: &str) -> bool {
    let Some((bytes, _)) = registry.manifest(repo, digest) else {
        return false;
    };
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let blobs = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().unwrap())
        .all(|d| blob_stored(registry, repo, d["digest"].as_str().unwrap()));
    let fallback = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    blobs && registry.manifest(repo, &fallback).is_some()
}

/// Whether `repo` holds the blob `digest` (asked with the registry's own credentials).
fn blob_stored(registry: &Registry, repo: &str, digest: &str) -> bool {
    let mut head = registry.client().head(format!(
        "{}://{}/v2/{repo}/blobs/{digest}",
        registry.scheme,
        registry.host()
    ));
    if let Auth::Htpasswd { user, password } = &registry.auth {
        head = head.basic_auth(user, Some(password));
    }
    head.send().unwrap().status().as_u16() == 200
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

#[test]
fn two_registries_with_their_own_credentials_get_one_digest() {
    let (a, b) = (
        Registry::with_htpasswd(ALICE.0, ALICE.1),
        Registry::with_htpasswd(BOB.0, BOB.1),
    );
    let ws = Workspace::new();
    // The inputs are the first registry's credentials; the second's come from docker login.
    docker_login(&ws, &b.host(), BOB);
    // ECDSA signatures differ at each signing: one bundle in both registries means one signing.
    let (key, _) = common::raw::p256_key(&ws.root(), "release");
    let images = format!("{}/acme/app\n{}/team/app", a.host(), b.host());
    let env = loud(ws.multiply_env(
        &images,
        &[
            ("tags", "1.2.3,latest"),
            ("insecure", "true"),
            ("username", ALICE.0),
            ("password", ALICE.1),
            ("signing-key", key.to_str().unwrap()),
        ],
    ));
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    let outputs = ws.outputs();
    let digest = &outputs["digest"];
    for (registry, repo) in [(&a, "acme/app"), (&b, "team/app")] {
        for tag in ["1.2.3", "latest"] {
            assert_eq!(
                tagged(registry, repo, tag).as_ref(),
                Some(digest),
                "{repo}:{tag}"
            );
        }
        assert!(holds_complete(registry, repo, digest), "{repo}");
    }
    // One provenance, signed once, attached in each: the same referrers listed.
    let fallback = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    let listed = a.manifest("acme/app", &fallback).unwrap().0;
    assert_eq!(listed, b.manifest("team/app", &fallback).unwrap().0);
    let index: serde_json::Value = serde_json::from_slice(&listed).unwrap();
    let referrers: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert!(
        referrers.contains(&outputs["provenance-digest"].as_str())
            && referrers.contains(&outputs["bundle-digest"].as_str()),
        "{referrers:?} {outputs:?}"
    );
    assert_eq!(
        lines(&outputs["refs"]),
        [
            format!("{}/acme/app@{digest}", a.host()),
            format!("{}/team/app@{digest}", b.host())
        ]
    );
    assert_eq!(outputs["ref"], format!("{}/acme/app@{digest}", a.host()));
    assert!(
        run.all().contains(&format!(
            "credentials for {}: the `username` and `password` inputs",
            a.host()
        )),
        "{run:?}"
    );
    assert!(
        run.all().contains(&format!(
            "the `username` and `password` inputs are for {}",
            a.host()
        )),
        "{run:?}"
    );
    let summary = ws.summary();
    assert!(
        summary.contains(&format!("`{}/team/app`: pushed", b.host())),
        "{summary}"
    );
    assert_no_secrets(&run, &ws, &[ALICE.1, BOB.1]);
}

#[test]
fn a_registry_refusing_the_manifest_fails_the_step_by_name_and_the_other_keeps_the_artifact() {
    let (a, b) = (Registry::start(), Registry::start());
    let refusing = FaultProxy::start(b.port, |_, method, path| {
        if method == "PUT" && path.contains("/manifests/") {
            Fault::Answer(
                403,
                r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#
                    .to_owned(),
            )
        } else {
            Fault::Pass
        }
    });
    let ws = Workspace::new();
    let images = format!("{}/acme/app, {}/acme/app", a.host(), refusing.host());
    let mut env = ws.multiply_env(&images, &[("tags", "1.2.3"), ("insecure", "true")]);
    env.insert("WASM_OCI_RETRY_MAX_ELAPSED".into(), "2".into());
    let run = ws.run_action(&env);
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].contains(&format!("did not reach {}/acme/app", refusing.host()))
            && errors[0].contains(&format!("complete in {}/acme/app@sha256:", a.host())),
        "{}",
        errors[0]
    );
    // The first registry holds everything, tagged; the refusing one has no tag.
    let outputs = ws.outputs();
    let digest = &outputs["digest"];
    assert!(holds_complete(&a, "acme/app", digest));
    assert_eq!(tagged(&a, "acme/app", "1.2.3").as_ref(), Some(digest));
    assert!(
        b.image_tags("acme/app").is_empty(),
        "{:?}",
        b.tags("acme/app")
    );
    assert_eq!(
        lines(&outputs["refs"]),
        [format!("{}/acme/app@{digest}", a.host())]
    );
    let summary = ws.summary();
    assert!(
        summary.contains(&format!("`{}/acme/app`: **not pushed**", refusing.host())),
        "{summary}"
    );
}

#[test]
fn refused_credentials_at_one_registry_push_nothing_anywhere() {
    let (a, b) = (
        Registry::with_htpasswd(ALICE.0, ALICE.1),
        Registry::with_htpasswd(BOB.0, BOB.1),
    );
    let ws = Workspace::new();
    docker_login(&ws, &b.host(), (BOB.0, "not-bobs-password"));
    let images = format!("{}/acme/app\n{}/acme/app", a.host(), b.host());
    let env = ws.multiply_env(
        &images,
        &[
            ("tags", "1.2.3"),
            ("insecure", "true"),
            ("username", ALICE.0),
            ("password", ALICE.1),
        ],
    );
    let run = ws.run_action(&env);
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert!(
        errors.len() == 1 && errors[0].contains(&format!("registry {}", b.host())),
        "{run:?}"
    );
    assert_eq!(a.upload_count(), 0, "nothing sent to the first registry");
    assert!(a.image_tags("acme/app").is_empty());
    assert!(ws.outputs().is_empty(), "no outputs: {:?}", ws.outputs());
}

#[test]
fn metadata_action_tags_output_names_the_registries_and_their_tags() {
    let (a, b) = (Registry::start(), Registry::start());
    let ws = Workspace::new();
    // `images: A/acme/app, B/acme/app` with `tags: type=semver,...`, as `steps.meta.outputs.tags`;
    // `image` is empty.
    let tags = format!(
        "{a}/acme/app:1.2.3\n{a}/acme/app:latest\n{b}/acme/app:1.2.3\n",
        a = a.host(),
        b = b.host()
    );
    let env = ws.multiply_env("", &[("tags", &tags), ("insecure", "true")]);
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    let digest = &ws.outputs()["digest"];
    assert_eq!(a.image_tags("acme/app"), ["1.2.3", "latest"]);
    assert_eq!(b.image_tags("acme/app"), ["1.2.3"]);
    assert_eq!(tagged(&b, "acme/app", "1.2.3").as_ref(), Some(digest));
    assert_eq!(ws.outputs()["tags"], "1.2.3,latest");
    assert_eq!(lines(&ws.outputs()["refs"]).len(), 2);
}

#[test]
fn metadata_action_environment_is_taken_when_tags_is_empty() {
    let (a, b) = (Registry::start(), Registry::start());

    // DOCKER_METADATA_OUTPUT_TAGS, `image` empty: every image it names.
    let ws = Workspace::new();
    let mut env = ws.multiply_env("", &[("insecure", "true")]);
    env.insert(
        "DOCKER_METADATA_OUTPUT_TAGS".into(),
        format!("{}/acme/app:1.2.3\n{}/acme/app:1.2.3", a.host(), b.host()),
    );
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout
            .contains("tags: the input is empty; using DOCKER_METADATA_OUTPUT_TAGS from docker/metadata-action"),
        "{run:?}"
    );
    assert_eq!(a.image_tags("acme/app"), ["1.2.3"]);
    assert_eq!(b.image_tags("acme/app"), ["1.2.3"]);

    // Only DOCKER_METADATA_OUTPUT_JSON, and `image` names one of its two images.
    let ws = Workspace::new();
    let image = format!("{}/acme/json", a.host());
    let mut env = ws.multiply_env(&image, &[("insecure", "true")]);
    let json = serde_json::json!({
        "tags": [format!("{image}:2.0.0"), format!("{}/acme/json:2.0.0", b.host())],
        "labels": {"org.opencontainers.image.version": "2.0.0"},
        "annotations": ["manifest:org.opencontainers.image.version=2.0.0"],
    });
    env.insert("DOCKER_METADATA_OUTPUT_JSON".into(), json.to_string());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout.contains("using DOCKER_METADATA_OUTPUT_JSON"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("also names other images than `image`, left out"),
        "{run:?}"
    );
    assert_eq!(a.image_tags("acme/json"), ["2.0.0"]);
    assert!(b.image_tags("acme/json").is_empty());
}

/// The CLI in a `run:` step after docker/metadata-action takes its tags and annotations as the
/// action does, when `--tags` and `--annotations` are not given.
#[test]
fn the_cli_takes_metadata_action_environment_when_tags_is_empty() {
    let registry = Registry::start();
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let image = format!("{}/acme/cli-meta", registry.host());
    let tags = format!("{image}:1.2.3\n{image}:latest");
    let run = ws.run_cli(
        &["push", "m.wasm", &image, "--insecure"],
        &[
            ("DOCKER_METADATA_OUTPUT_TAGS", &tags),
            (
                "DOCKER_METADATA_OUTPUT_ANNOTATIONS",
                "manifest:org.opencontainers.image.version=1.2.3",
            ),
            ("SOURCE_DATE_EPOCH", "0"),
        ],
    );
    assert!(run.success(), "{run:?}");
    assert!(
        run.stderr
            .contains("tags: the input is empty; using DOCKER_METADATA_OUTPUT_TAGS from docker/metadata-action"),
        "{run:?}"
    );
    let mut pushed = registry.image_tags("acme/cli-meta");
    pushed.sort();
    assert_eq!(pushed, ["1.2.3", "latest"]);
    let (bytes, _) = registry.manifest("acme/cli-meta", "1.2.3").unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "1.2.3"
    );
}

/// The package API's answer for `acme/multiply`: `visibility`, and the linked repository if any.
fn package_json(visibility: &str, repository: Option<&str>) -> String {
    let mut package = serde_json::json!({
        "id": 197,
        "name": "multiply",
        "package_type": "container",
        "owner": {"login": "acme", "id": 1, "type": "Organization"},
        "version_count": 1,
        "visibility": visibility,
        "url": "https://api.github.com/orgs/acme/packages/container/multiply",
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:00:00Z",
        "html_url": "https://github.com/orgs/acme/packages/container/package/multiply",
    });
    if let Some(full_name) = repository {
        package["repository"] =
            serde_json::json!({"id": 1296269, "name": "multiply", "full_name": full_name});
    }
    package.to_string()
}

#[test]
fn ghcr_package_health_is_read_after_a_push_there() {
    let registry = Registry::start();
    // The runner reaches ghcr.io through an HTTP proxy, which here leads to the local registry.
    let proxy = FaultProxy::start(registry.port, |_, _, _| Fault::Pass);
    const SETTINGS: &str = "https://github.com/orgs/acme/packages/container/multiply/settings";
    let route = "GET /api/v3/orgs/acme/packages/container/multiply ";
    // Each case: its name, the repository's visibility, the API's answer, what the log must hold
    // and what it must not.
    type Case = (
        &'static str,
        &'static str,
        Answer,
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "private and unlinked",
            "public",
            Answer::Routes(vec![(route, 200, package_json("private", None))]),
            &[
                "::warning::package ghcr.io/acme/multiply is private while the repository acme/multiply is public",
                "::warning::package ghcr.io/acme/multiply is linked to no repository",
                SETTINGS,
            ],
            &[],
        ),
        (
            "public and linked",
            "public",
            Answer::Routes(vec![(
                route,
                200,
                package_json("public", Some("acme/multiply")),
            )]),
            &["package ghcr.io/acme/multiply is public and linked to acme/multiply"],
            &["::warning::package"],
        ),
        (
            "a user's package, linked elsewhere",
            "public",
            Answer::Routes(vec![(
                "GET /api/v3/users/acme/packages/container/multiply ",
                200,
                package_json("public", Some("acme/other")),
            )]),
            &[
                "::warning::package ghcr.io/acme/multiply is linked to acme/other, not acme/multiply",
            ],
            &["is private"],
        ),
        (
            "the API refuses",
            "public",
            Answer::Json(403, common::github_fake::FORBIDDEN.to_owned()),
            &["cannot read package ghcr.io/acme/multiply from the GitHub API"],
            &["::warning::package", "::warning::cannot read package"],
        ),
        (
            "neither an organization's nor a user's package",
            "public",
            Answer::Routes(Vec::new()),
            &[
                "(404: no such package, or the token cannot see it); its visibility and repository link are not checked",
            ],
            &["::warning::package"],
        ),
        (
            "a private repository",
            "private",
            Answer::Routes(vec![(route, 200, package_json("private", None))]),
            &[],
            &["package ghcr.io/acme/multiply"],
        ),
    ];
    for (case, visibility, answer, wanted, unwanted) in cases {
        let github = FakeGithub::start(answer);
        let ws = Workspace::new();
        let event = ws.dir.path().join("event.json");
        std::fs::write(
            &event,
            serde_json::json!({"repository": {"full_name": "acme/multiply", "visibility": visibility}})
                .to_string(),
        )
        .unwrap();
        let mut env = ws.multiply_env(
            "ghcr.io/acme/multiply",
            &[
                ("tags", "1.2.3"),
                ("insecure", "true"),
                ("github-token", "ghs_packagesToken"),
            ],
        );
        let extra: BTreeMap<&str, String> = BTreeMap::from([
            ("HTTP_PROXY", format!("http://{}", proxy.host())),
            ("NO_PROXY", "127.0.0.1,localhost".to_owned()),
            ("GITHUB_API_URL", github.api_url()),
            ("GITHUB_EVENT_PATH", event.display().to_string()),
            ("WASM_OCI_RETRY_MAX_ELAPSED", "2".to_owned()),
        ]);
        env.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let run = ws.run_action(&env);
        assert!(run.success(), "{case}: {run:?}");
        assert_eq!(registry.image_tags("acme/multiply"), ["1.2.3"], "{case}");
        assert!(
            proxy
                .log()
                .iter()
                .any(|l| l.contains("http://ghcr.io/v2/acme/multiply/manifests/1.2.3")),
            "{case}: the push went to ghcr.io through the proxy: {:?}",
            proxy.log()
        );
        for text in wanted {
            assert!(run.stdout.contains(text), "{case}: no `{text}` in {run:?}");
        }
        for text in unwanted {
            assert!(!run.stdout.contains(text), "{case}: `{text}` in {run:?}");
        }
        let asked: Vec<_> = github
            .requests()
            .into_iter()
            .filter(|r| r.line.contains("/packages/"))
            .collect();
        match visibility {
            "public" => {
                assert!(!asked.is_empty(), "{case}: the package was not read");
                assert!(
                    asked.iter().all(|r| r
                        .headers
                        .iter()
                        .any(|(k, v)| k == "authorization" && v.ends_with("ghs_packagesToken"))),
                    "{case}: {asked:?}"
                );
            }
            _ => assert!(asked.is_empty(), "{case}: {asked:?}"),
        }
        assert_no_secrets(&run, &ws, &["ghs_packagesToken"]);
    }
}
