//! docker/metadata-action's tags, taken as it leaves them: besides its `tags` output (which
//! passes straight into the `tags` input), it sets `DOCKER_METADATA_OUTPUT_TAGS` (one reference
//! per line) and `DOCKER_METADATA_OUTPUT_JSON` (`{"tags": [...], ...}`) in the job's
//! environment. A push whose `tags` input is empty takes them from there.

use crate::context::Env;
use crate::input;
use crate::inputs::Inputs;

/// The variable with the tags, one per line (or as `sep-tags` joins them).
pub const TAGS_VAR: &str = "DOCKER_METADATA_OUTPUT_TAGS";

/// The variable with the JSON output, whose `tags` array holds the same.
pub const JSON_VAR: &str = "DOCKER_METADATA_OUTPUT_JSON";

/// The tags found in the environment for a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvTags {
    /// The variable they came from.
    pub variable: &'static str,
    /// The items taken: references to the images `image` names (all of them when `image` is
    /// empty), and bare tags.
    pub taken: Vec<String>,
    /// References to other images, left out.
    pub left_out: Vec<String>,
}

/// metadata-action's tags, when a push's `tags` input is empty and its environment holds some.
/// With `image` given, references to other images are left out: `image` says where this step
/// pushes, and the job's environment may describe another step's images.
pub fn env_tags(env: &Env, inputs: &Inputs) -> Option<EnvTags> {
    let input = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    if inputs.get(input::TAGS).is_some() || inputs.get(input::COMMAND).is_some_and(|c| c != "push")
    {
        return None;
    }
    let (variable, items) = match input(TAGS_VAR) {
        Some(text) => (TAGS_VAR, split(text)),
        None => (JSON_VAR, json_tags(input(JSON_VAR)?)?),
    };
    if items.is_empty() {
        return None;
    }
    let images: Vec<_> = inputs
        .list(input::IMAGE)
        .iter()
        .filter_map(|i| crate::targets::image_of(i, false))
        .collect();
    let (taken, left_out) = items.into_iter().partition(|item| {
        images.is_empty()
            || crate::targets::image_of(item, true).is_none_or(|image| images.contains(&image))
    });
    Some(EnvTags {
        variable,
        taken,
        left_out,
    })
}

impl EnvTags {
    /// Says where the tags came from, and which were left out.
    pub fn log(&self) {
        let variable = self.variable;
        if !self.taken.is_empty() {
            tracing::info!(
                "tags: the input is empty; using {variable} from docker/metadata-action: {}",
                self.taken.join(", ")
            );
        }
        if !self.left_out.is_empty() {
            tracing::info!(
                "tags: {variable} also names other images than `image`, left out: {}",
                self.left_out.join(", ")
            );
        }
    }
}

/// The items of a list given one per line or comma-separated.
fn split(text: &str) -> Vec<String> {
    text.split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `tags` array of the JSON output; `None` when it has none or is not JSON.
fn json_tags(text: &str) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(
        value
            .get("tags")?
            .as_array()?
            .iter()
            .filter_map(|t| t.as_str())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
    )
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

    /// A case: its name, the environment, and the variable, taken and left-out items expected.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<Expected<'a>>);
    type Expected<'a> = (&'a str, &'a [&'a str], &'a [&'a str]);

    /// The environment metadata-action leaves, in the shapes its README documents.
    #[test]
    fn metadata_action_environment_formats() {
        const JSON: &str = r#"{"tags":["ghcr.io/user/app:1.2.3","ghcr.io/user/app:latest"],"labels":{"org.opencontainers.image.version":"1.2.3"},"annotations":["manifest:org.opencontainers.image.version=1.2.3"]}"#;
        let cases: &[Case<'static>] = &[
            (
                "tags, one per line",
                &[(
                    TAGS_VAR,
                    "ghcr.io/user/app:1.2.3\nghcr.io/user/app:latest\n",
                )],
                Some((
                    TAGS_VAR,
                    &["ghcr.io/user/app:1.2.3", "ghcr.io/user/app:latest"],
                    &[],
                )),
            ),
            (
                "tags joined by `sep-tags: ,`",
                &[(TAGS_VAR, "name/app:1.2.3,name/app:latest")],
                Some((TAGS_VAR, &["name/app:1.2.3", "name/app:latest"], &[])),
            ),
            (
                "only the JSON output",
                &[(JSON_VAR, JSON)],
                Some((
                    JSON_VAR,
                    &["ghcr.io/user/app:1.2.3", "ghcr.io/user/app:latest"],
                    &[],
                )),
            ),
            (
                "the tags variable wins over the JSON",
                &[(TAGS_VAR, "ghcr.io/user/app:edge"), (JSON_VAR, JSON)],
                Some((TAGS_VAR, &["ghcr.io/user/app:edge"], &[])),
            ),
            (
                "empty `images`: bare tags",
                &[
                    (TAGS_VAR, "1.2.3\nlatest"),
                    ("INPUT_IMAGE", "ghcr.io/user/app"),
                ],
                Some((TAGS_VAR, &["1.2.3", "latest"], &[])),
            ),
            (
                "`image` given: references to other images are left out",
                &[
                    (TAGS_VAR, "ghcr.io/user/app:1.2.3\nghcr.io/user/other:1.2.3"),
                    ("INPUT_IMAGE", "ghcr.io/User/App"),
                ],
                Some((
                    TAGS_VAR,
                    &["ghcr.io/user/app:1.2.3"],
                    &["ghcr.io/user/other:1.2.3"],
                )),
            ),
            (
                "the `tags` input wins",
                &[(TAGS_VAR, "ghcr.io/user/app:1.2.3"), ("INPUT_TAGS", "v1")],
                None,
            ),
            (
                "not for pull or verify",
                &[
                    (TAGS_VAR, "ghcr.io/user/app:1.2.3"),
                    ("INPUT_COMMAND", "verify"),
                ],
                None,
            ),
            ("empty variables", &[(TAGS_VAR, " "), (JSON_VAR, "")], None),
            ("JSON without tags", &[(JSON_VAR, r#"{"tags":[]}"#)], None),
            ("nothing", &[], None),
        ];
        for (case, pairs, expected) in cases {
            let env = env(pairs);
            let found = env_tags(&env, &Inputs::from_action_env(&env));
            let expected = expected.map(|(variable, taken, left_out)| EnvTags {
                variable,
                taken: taken.iter().map(|s| s.to_string()).collect(),
                left_out: left_out.iter().map(|s| s.to_string()).collect(),
            });
            assert_eq!(found, expected, "{case}");
        }
    }
}
