//! The SLSA v1 provenance statement (an in-toto Statement v1) for a pushed artifact, shaped like
//! GitHub's own workflow provenance so that tools reading `actions/attest-build-provenance`
//! statements read ours. Built only from the run's context, never from the clock, so the same
//! run gives the same bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::context::GithubContext;
use crate::reference::Digest;

/// The in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance v1 predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// GitHub's build type for a workflow run.
pub const BUILD_TYPE: &str = "https://actions.github.io/buildtypes/workflow/v1";
/// The builder named when the run is not a GitHub workflow (a laptop, another CI).
pub const CLI_BUILDER_ID: &str = concat!("pkg:cargo/wasm-oci@", env!("CARGO_PKG_VERSION"));

/// An in-toto Statement v1 with an SLSA provenance v1 predicate. Read leniently (a field
/// missing reads as empty), so verify can say what a statement from another tool lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// What the statement is about: the pushed manifest and the .wasm.
    pub subject: Vec<Subject>,
    /// Always [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The provenance.
    pub predicate: Provenance,
}

/// A subject: a name and its digests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subject {
    /// The artifact's name (`registry/repo`, or the file name).
    pub name: String,
    /// Algorithm to hex digest, e.g. `sha256`.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// A subject with a sha256 digest.
    pub fn sha256(name: impl Into<String>, digest: &Digest) -> Self {
        Subject {
            name: name.into(),
            digest: BTreeMap::from([("sha256".to_owned(), digest.hex().to_owned())]),
        }
    }
}

/// The SLSA provenance v1 predicate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// What was built and from what.
    pub build_definition: BuildDefinition,
    /// Who built it and which run.
    pub run_details: RunDetails,
}

/// `buildDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// Always [`BUILD_TYPE`].
    pub build_type: String,
    /// The workflow that ran.
    pub external_parameters: ExternalParameters,
    /// The GitHub context of the run.
    pub internal_parameters: InternalParameters,
    /// The git commit, and what the build resolved.
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// `externalParameters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalParameters {
    /// The workflow file, from `GITHUB_WORKFLOW_REF`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Workflow>,
}

/// `externalParameters.workflow`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Workflow {
    /// The git ref the workflow file was read at.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The repository's URL.
    pub repository: String,
    /// The workflow file's path in the repository.
    pub path: String,
}

/// `internalParameters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InternalParameters {
    /// The GitHub context.
    pub github: GithubParameters,
    /// What the build step recorded (toolchain, command), when the artifact was built here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<serde_json::Value>,
}

/// `internalParameters.github`, as GitHub writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GithubParameters {
    /// `GITHUB_EVENT_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    /// `GITHUB_REPOSITORY_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_id: Option<String>,
    /// `GITHUB_REPOSITORY_OWNER_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_owner_id: Option<String>,
    /// `RUNNER_ENVIRONMENT` (`github-hosted` or `self-hosted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_environment: Option<String>,
}

/// An SLSA resource descriptor (a resolved dependency).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceDescriptor {
    /// Where it is, e.g. `git+https://github.com/org/app@refs/tags/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Its name, when it has no URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Algorithm to digest, e.g. `gitCommit` or `sha256`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
}

/// `runDetails`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunDetails {
    /// The builder.
    pub builder: Builder,
    /// The run.
    pub metadata: RunMetadata,
}

/// `runDetails.builder`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Builder {
    /// The workflow file at its ref, as a URL; [`CLI_BUILDER_ID`] outside GitHub.
    pub id: String,
}

/// `runDetails.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[serde(rename_all = "camelCase")]
pub struct RunMetadata {
    /// The run attempt's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
}

/// What a build step contributes to the provenance (build mode's record of a build gives it; a
/// located file has none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildDetails {
    /// Inputs the build resolved (lock file, toolchain), added after the git commit.
    pub resolved_dependencies: Vec<ResourceDescriptor>,
    /// The build's own parameters, recorded as `internalParameters.build`.
    pub parameters: Option<serde_json::Value>,
}

/// What the statement is about.
#[derive(Debug, Clone)]
pub struct Subjects<'a> {
    /// `registry/repository` (or the layout) the manifest was pushed to.
    pub image: &'a str,
    /// The pushed manifest's digest.
    pub manifest: &'a Digest,
    /// The .wasm file's name.
    pub wasm_name: &'a str,
    /// The .wasm file's digest.
    pub wasm: &'a Digest,
}

/// The provenance statement for `subjects`, from the run's context and an optional build.
pub fn statement(
    ctx: &GithubContext,
    subjects: &Subjects<'_>,
    build: Option<BuildDetails>,
) -> Statement {
    let server = ctx
        .server_url
        .as_deref()
        .unwrap_or("https://github.com")
        .trim_end_matches('/');
    let workflow = ctx
        .workflow_ref
        .as_deref()
        .and_then(|w| parse_workflow_ref(server, w));

    let mut resolved_dependencies = Vec::new();
    if let (Some(url), Some(sha)) = (ctx.repository_url(), &ctx.sha) {
        let uri = match &ctx.git_ref {
            Some(r) => format!("git+{url}@{r}"),
            None => format!("git+{url}"),
        };
        resolved_dependencies.push(ResourceDescriptor {
            uri: Some(uri),
            name: None,
            digest: BTreeMap::from([("gitCommit".to_owned(), sha.clone())]),
        });
    }
    let build = build.unwrap_or_default();
    resolved_dependencies.extend(build.resolved_dependencies);

    let invocation_id = match (ctx.repository_url(), &ctx.run_id) {
        (Some(url), Some(run)) => Some(format!(
            "{url}/actions/runs/{run}/attempts/{}",
            ctx.run_attempt.as_deref().unwrap_or("1")
        )),
        _ => None,
    };

    Statement {
        statement_type: STATEMENT_TYPE.to_owned(),
        subject: vec![
            Subject::sha256(subjects.image, subjects.manifest),
            Subject::sha256(subjects.wasm_name, subjects.wasm),
        ],
        predicate_type: PREDICATE_TYPE.to_owned(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.to_owned(),
                external_parameters: ExternalParameters {
                    workflow: workflow.as_ref().map(|(w, _)| w.clone()),
                },
                internal_parameters: InternalParameters {
                    github: GithubParameters {
                        event_name: ctx.event_name.clone(),
                        repository_id: ctx.repository_id.clone(),
                        repository_owner_id: ctx.repository_owner_id.clone(),
                        runner_environment: ctx.runner_environment.clone(),
                    },
                    build: build.parameters,
                },
                resolved_dependencies,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: workflow
                        .map(|(_, id)| id)
                        .unwrap_or_else(|| CLI_BUILDER_ID.to_owned()),
                },
                metadata: RunMetadata { invocation_id },
            },
        },
    }
}

impl Statement {
    /// The deterministic JSON bytes (fixed field order, sorted maps, no whitespace).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement always serializes")
    }
}

/// Splits `owner/repo/.github/workflows/x.yml@refs/...` into the workflow parameters and the
/// builder id (`https://github.com/owner/repo/.github/workflows/x.yml@refs/...`).
fn parse_workflow_ref(server: &str, workflow_ref: &str) -> Option<(Workflow, String)> {
    let (file, git_ref) = workflow_ref.split_once('@')?;
    let mut parts = file.splitn(3, '/');
    let (owner, repo, path) = (parts.next()?, parts.next()?, parts.next()?);
    if owner.is_empty() || repo.is_empty() || path.is_empty() || git_ref.is_empty() {
        return None;
    }
    Some((
        Workflow {
            git_ref: git_ref.to_owned(),
            repository: format!("{server}/{owner}/{repo}"),
            path: path.to_owned(),
        },
        format!("{server}/{workflow_ref}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> GithubContext {
        GithubContext {
            server_url: Some("https://github.com".into()),
            repository: Some("acme/app".into()),
            sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
            git_ref: Some("refs/tags/v1.2.3".into()),
            run_id: Some("42".into()),
            run_attempt: Some("2".into()),
            workflow_ref: Some("acme/app/.github/workflows/release.yml@refs/tags/v1.2.3".into()),
            event_name: Some("push".into()),
            repository_id: Some("1001".into()),
            repository_owner_id: Some("2002".into()),
            runner_environment: Some("github-hosted".into()),
            ..Default::default()
        }
    }

    fn cargo() -> Option<BuildDetails> {
        Some(BuildDetails {
            resolved_dependencies: vec![ResourceDescriptor {
                name: Some("Cargo.lock".into()),
                digest: BTreeMap::from([("sha256".into(), "ab".into())]),
                ..Default::default()
            }],
            parameters: Some(serde_json::json!({"target": "wasm32-wasip1"})),
        })
    }

    #[test]
    fn shaped_like_github_workflow_provenance() {
        let manifest = Digest::of(b"manifest");
        let wasm = Digest::of(b"wasm");
        let subjects = Subjects {
            image: "ghcr.io/acme/app",
            manifest: &manifest,
            wasm_name: "app.wasm",
            wasm: &wasm,
        };
        let s = statement(&ctx(), &subjects, cargo());
        let v: serde_json::Value = serde_json::from_slice(&s.to_bytes()).unwrap();
        let expected = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [
                {"name": "ghcr.io/acme/app", "digest": {"sha256": manifest.hex()}},
                {"name": "app.wasm", "digest": {"sha256": wasm.hex()}},
            ],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {
                    "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                    "externalParameters": {"workflow": {
                        "ref": "refs/tags/v1.2.3",
                        "repository": "https://github.com/acme/app",
                        "path": ".github/workflows/release.yml",
                    }},
                    "internalParameters": {
                        "github": {
                            "event_name": "push",
                            "repository_id": "1001",
                            "repository_owner_id": "2002",
                            "runner_environment": "github-hosted",
                        },
                        "build": {"target": "wasm32-wasip1"},
                    },
                    "resolvedDependencies": [
                        {"uri": "git+https://github.com/acme/app@refs/tags/v1.2.3",
                         "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"}},
                        {"name": "Cargo.lock", "digest": {"sha256": "ab"}},
                    ],
                },
                "runDetails": {
                    "builder": {"id": "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3"},
                    "metadata": {"invocationId": "https://github.com/acme/app/actions/runs/42/attempts/2"},
                },
            },
        });
        assert_eq!(v, expected);
        // Deterministic, and readable back.
        assert_eq!(
            s.to_bytes(),
            statement(&ctx(), &subjects, cargo()).to_bytes()
        );
        assert_eq!(
            serde_json::from_slice::<Statement>(&s.to_bytes()).unwrap(),
            s
        );
    }

    #[test]
    fn outside_github_names_the_tool_as_builder() {
        let d = Digest::of(b"x");
        let subjects = Subjects {
            image: "oci:out",
            manifest: &d,
            wasm_name: "a.wasm",
            wasm: &d,
        };
        let s = statement(&GithubContext::default(), &subjects, None);
        assert_eq!(s.predicate.run_details.builder.id, CLI_BUILDER_ID);
        assert!(
            s.predicate
                .build_definition
                .resolved_dependencies
                .is_empty()
        );
        assert_eq!(s.predicate.run_details.metadata.invocation_id, None);
        let text = String::from_utf8(s.to_bytes()).unwrap();
        assert!(text.contains(r#""externalParameters":{}"#), "{text}");
    }
}
