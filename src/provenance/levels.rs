//! The `annotations` input as docker/metadata-action writes it: `key=value` lines, each
//! optionally prefixed with the levels BuildKit knows (`manifest:`, `index:`,
//! `manifest-descriptor:`, `index-descriptor:`, several comma-separated, each optionally with a
//! `[os/arch]` platform). When the input is empty, metadata-action's environment variables
//! (`DOCKER_METADATA_OUTPUT_ANNOTATIONS`, else the `annotations` of `DOCKER_METADATA_OUTPUT_JSON`)
//! stand in for it.
//!
//! A push writes one image manifest and no index, so each level is placed where it fits:
//! `manifest:` and unprefixed lines on the manifest; `index:` also on the manifest, the
//! top-level object registries read when there is no index, unless `manifest:` set the same key;
//! the descriptor levels describe an entry in an index, which a single manifest has none of, so
//! they are left out with a notice.

use std::collections::BTreeMap;

use crate::context::Env;

/// metadata-action's annotations output, exported for later steps.
pub const ANNOTATIONS_VAR: &str = "DOCKER_METADATA_OUTPUT_ANNOTATIONS";
/// metadata-action's JSON output, exported for later steps; its `annotations` array.
pub const JSON_VAR: &str = "DOCKER_METADATA_OUTPUT_JSON";

/// Where an annotation goes, in BuildKit's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The image manifest (also what an unprefixed line means).
    Manifest,
    /// The image index.
    Index,
    /// A manifest's descriptor inside an index.
    ManifestDescriptor,
    /// An index's descriptor inside an index.
    IndexDescriptor,
}

impl Level {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "manifest" => Level::Manifest,
            "index" => Level::Index,
            "manifest-descriptor" => Level::ManifestDescriptor,
            "index-descriptor" => Level::IndexDescriptor,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Level::Manifest => "manifest",
            Level::Index => "index",
            Level::ManifestDescriptor => "manifest-descriptor",
            Level::IndexDescriptor => "index-descriptor",
        }
    }
}

/// One annotation line: its levels (with a platform where one was given), key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    levels: Vec<(Level, Option<String>)>,
    key: String,
    value: String,
}

/// The parsed `annotations` input, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAnnotations {
    entries: Vec<Entry>,
}

/// The annotations placed on the manifest, and the notices about what went elsewhere or nowhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placed {
    /// The manifest's annotations from the input.
    pub manifest: BTreeMap<String, String>,
    /// What the user should know: levels written on the manifest, or left out.
    pub notices: Vec<String>,
}

impl UserAnnotations {
    /// Parses `key=value` lines (or comma-separated pairs on one line), each optionally with a
    /// level prefix. The error is the reason, for the caller to name the input.
    pub fn parse(value: &str) -> Result<Self, String> {
        let lines: Vec<&str> = value
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let items: Vec<&str> = if lines.len() == 1 && lines[0].split(',').all(|p| p.contains('=')) {
            lines[0].split(',').map(str::trim).collect()
        } else {
            lines
        };
        let entries = items
            .into_iter()
            .map(parse_item)
            .collect::<Result<_, _>>()?;
        Ok(UserAnnotations { entries })
    }

    /// The annotations a pushed manifest carries from these, as verify expects them: those at
    /// level `manifest` or `index` (a push writes both on the manifest), empty values left out
    /// as a push leaves them out.
    pub fn expected(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .filter(|e| !e.value.is_empty())
            .filter(|e| {
                e.levels
                    .iter()
                    .any(|(level, _)| matches!(level, Level::Manifest | Level::Index))
            })
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }

    /// Whether no annotation was given.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// metadata-action's annotations from the environment, and the variable they came from:
    /// `DOCKER_METADATA_OUTPUT_ANNOTATIONS`, else the `annotations` array of
    /// `DOCKER_METADATA_OUTPUT_JSON`. `Ok(None)` when neither holds any.
    pub fn from_env(env: &Env) -> Result<Option<(Self, &'static str)>, String> {
        if let Some(text) = env.get(ANNOTATIONS_VAR).filter(|v| !v.trim().is_empty()) {
            let parsed = Self::parse(text).map_err(|e| format!("{ANNOTATIONS_VAR}: {e}"))?;
            return Ok(Some((parsed, ANNOTATIONS_VAR)));
        }
        let Some(json) = env.get(JSON_VAR).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("{JSON_VAR} is not JSON: {e}"))?;
        let lines: Vec<&str> = match value.get("annotations") {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .ok_or_else(|| format!("{JSON_VAR}: `annotations` holds a non-string"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(format!("{JSON_VAR}: `annotations` is not an array")),
        };
        if lines.is_empty() {
            return Ok(None);
        }
        // One entry per item, whatever commas the values hold.
        let entries = lines
            .into_iter()
            .map(|line| parse_item(line.trim()).map_err(|e| format!("{JSON_VAR}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Some((UserAnnotations { entries }, JSON_VAR)))
    }

    /// Places the annotations for a push of one manifest for platform `os/architecture`.
    /// An empty value sets nothing: metadata-action writes `key=` for what it does not know (a
    /// repository without a description), which must not blank what the module says.
    pub fn place(&self, os: &str, architecture: &str) -> Placed {
        let platform = format!("{os}/{architecture}");
        let mut manifest = BTreeMap::new();
        let mut from_index: BTreeMap<String, String> = BTreeMap::new();
        let mut left_out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut other_platform = Vec::new();
        let mut empty = Vec::new();
        for entry in &self.entries {
            if entry.value.is_empty() {
                push_unique(&mut empty, &entry.key);
                continue;
            }
            for (level, on) in &entry.levels {
                if let Some(on) = on
                    && on != &platform
                {
                    push_unique(
                        &mut other_platform,
                        &format!("{}[{on}]:{}", level.name(), entry.key),
                    );
                    continue;
                }
                match level {
                    Level::Manifest => {
                        manifest.insert(entry.key.clone(), entry.value.clone());
                    }
                    Level::Index => {
                        from_index.insert(entry.key.clone(), entry.value.clone());
                    }
                    Level::ManifestDescriptor | Level::IndexDescriptor => {
                        let keys = left_out.entry(level.name()).or_default();
                        push_unique(keys, &entry.key);
                    }
                }
            }
        }
        let mut notices = Vec::new();
        let mut on_manifest = Vec::new();
        let mut overridden = Vec::new();
        for (key, value) in from_index {
            match manifest.get(&key) {
                None => {
                    on_manifest.push(key.clone());
                    manifest.insert(key, value);
                }
                Some(set) if set != &value => overridden.push(key),
                Some(_) => {}
            }
        }
        if !on_manifest.is_empty() {
            notices.push(format!(
                "annotations at level `index:` are written on the manifest, as one manifest is pushed and no index: {}",
                code_list(&on_manifest)
            ));
        }
        if !overridden.is_empty() {
            notices.push(format!(
                "annotations given at both `manifest:` and `index:` with different values take the `manifest:` value: {}",
                code_list(&overridden)
            ));
        }
        for (level, keys) in left_out {
            notices.push(format!(
                "annotations at level `{level}:` are left out: they describe an entry in an image index, and one manifest is pushed and no index: {}",
                code_list(&keys)
            ));
        }
        if !other_platform.is_empty() {
            notices.push(format!(
                "annotations for another platform than `{platform}` are left out: {}",
                code_list(&other_platform)
            ));
        }
        if !empty.is_empty() {
            notices.push(format!(
                "annotations with an empty value set nothing: {}",
                code_list(&empty)
            ));
        }
        Placed { manifest, notices }
    }
}

/// One `[levels:]key=value` item.
fn parse_item(item: &str) -> Result<Entry, String> {
    let Some((lhs, val)) = item.split_once('=') else {
        return Err(format!("`{item}` is not `key=value`"));
    };
    let (levels, key) = match lhs
        .split_once(':')
        .and_then(|(prefix, key)| parse_levels(prefix).map(|levels| (levels, key)))
    {
        Some((levels, key)) => (levels, key),
        None => (vec![(Level::Manifest, None)], lhs),
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("`{item}` has an empty key"));
    }
    Ok(Entry {
        levels,
        key: key.to_owned(),
        value: val.trim().to_owned(),
    })
}

/// `manifest`, `index,manifest`, `manifest[wasip1/wasm]`: the levels of a prefix, or `None`
/// when it is not one (the `:` is then part of the key).
fn parse_levels(prefix: &str) -> Option<Vec<(Level, Option<String>)>> {
    prefix
        .split(',')
        .map(|part| {
            let part = part.trim();
            match part.split_once('[') {
                Some((level, rest)) => {
                    let platform = rest.strip_suffix(']')?;
                    Some((Level::parse(level)?, Some(platform.trim().to_owned())))
                }
                None => Some((Level::parse(part)?, None)),
            }
        })
        .collect()
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|i| i == item) {
        list.push(item.to_owned());
    }
}

fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(text: &str) -> Placed {
        UserAnnotations::parse(text)
            .unwrap()
            .place("wasip1", "wasm")
    }

    /// A case: the input, the annotations on the manifest, notices that must appear.
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
    );

    /// Verify expects what a push writes on the manifest: plain lines and pairs, `manifest:`
    /// and `index:` entries under their bare keys; descriptor levels and empty values not.
    #[test]
    fn verify_expects_what_a_push_writes_on_the_manifest() {
        let expected = |text: &str| UserAnnotations::parse(text).unwrap().expected();
        let pairs = expected("a=1,b=2");
        assert_eq!((pairs["a"].as_str(), pairs["b"].as_str()), ("1", "2"));
        assert_eq!(expected("a=1\nb = x, y\n")["b"], "x, y");
        let levels = expected(
            "manifest:org.opencontainers.image.version=1.2.3\nindex:org.opencontainers.image.vendor=acme\nmanifest-descriptor:d=x\norg.opencontainers.image.description=",
        );
        assert_eq!(
            levels.into_iter().collect::<Vec<_>>(),
            [
                (
                    "org.opencontainers.image.vendor".to_owned(),
                    "acme".to_owned()
                ),
                (
                    "org.opencontainers.image.version".to_owned(),
                    "1.2.3".to_owned()
                ),
            ]
        );
    }

    /// The forms in docker/metadata-action's README and BuildKit's annotations document, and
    /// where a push of one manifest puts them.
    #[test]
    fn metadata_action_forms_are_placed_by_level() {
        let cases: &[Case] = &[
            // The default output: DOCKER_METADATA_ANNOTATIONS_LEVELS unset is `manifest`.
            (
                "manifest:org.opencontainers.image.title=app\nmanifest:org.opencontainers.image.version=1.2.3",
                &[
                    ("org.opencontainers.image.title", "app"),
                    ("org.opencontainers.image.version", "1.2.3"),
                ],
                &[],
            ),
            // No prefix: the manifest.
            (
                "org.opencontainers.image.vendor=Acme",
                &[("org.opencontainers.image.vendor", "Acme")],
                &[],
            ),
            // `manifest,index`: every line twice; once on the manifest, no notice.
            (
                "manifest:org.opencontainers.image.title=app\nindex:org.opencontainers.image.title=app",
                &[("org.opencontainers.image.title", "app")],
                &[],
            ),
            // `index` alone: written on the manifest, with a notice.
            (
                "index:org.opencontainers.image.description=A calculator",
                &[("org.opencontainers.image.description", "A calculator")],
                &["level `index:` are written on the manifest"],
            ),
            // Both levels, different values: `manifest:` wins.
            (
                "manifest:org.opencontainers.image.title=a\nindex:org.opencontainers.image.title=b",
                &[("org.opencontainers.image.title", "a")],
                &["take the `manifest:` value: `org.opencontainers.image.title`"],
            ),
            // Descriptor levels: left out.
            (
                "manifest-descriptor:org.opencontainers.image.title=app\nindex-descriptor:org.opencontainers.image.title=app",
                &[],
                &[
                    "`manifest-descriptor:` are left out",
                    "`index-descriptor:` are left out",
                ],
            ),
            // BuildKit's several levels in one prefix.
            (
                "index,manifest:org.opencontainers.image.authors=dvdksn",
                &[("org.opencontainers.image.authors", "dvdksn")],
                &[],
            ),
            // A platform: this one's kept, another's left out.
            (
                "manifest[wasip1/wasm]:a=1\nmanifest[linux/amd64]:b=2",
                &[("a", "1")],
                &["another platform than `wasip1/wasm`"],
            ),
            // metadata-action's `key=` for what the repository lacks: sets nothing.
            (
                "manifest:org.opencontainers.image.description=\nmanifest:org.opencontainers.image.licenses=MIT",
                &[("org.opencontainers.image.licenses", "MIT")],
                &["empty value set nothing: `org.opencontainers.image.description`"],
            ),
            // A value holding `=` and `:` is kept whole.
            (
                "manifest:com.example.url=https://x.test/?a=b",
                &[("com.example.url", "https://x.test/?a=b")],
                &[],
            ),
            // Comma-separated pairs on one line, as before.
            ("a=1,b=2", &[("a", "1"), ("b", "2")], &[]),
            // A colon that is no level stays in the key.
            ("com.example:thing=1", &[("com.example:thing", "1")], &[]),
        ];
        for (input, manifest, notices) in cases {
            let got = placed(input);
            let want: BTreeMap<String, String> = manifest
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got.manifest, want, "{input}");
            for notice in *notices {
                assert!(
                    got.notices.iter().any(|n| n.contains(notice)),
                    "{input}: no notice with {notice:?} in {:?}",
                    got.notices
                );
            }
            if notices.is_empty() {
                assert!(got.notices.is_empty(), "{input}: {:?}", got.notices);
            }
        }
        assert!(UserAnnotations::parse("manifest:novalue").is_err());
        assert!(UserAnnotations::parse("manifest:=x").is_err());
    }

    #[test]
    fn the_environment_stands_in_for_an_empty_input() {
        let env = |pairs: &[(&str, &str)]| -> Env {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(UserAnnotations::from_env(&env(&[])).unwrap(), None);
        let (a, var) = UserAnnotations::from_env(&env(&[
            (ANNOTATIONS_VAR, "manifest:a=1\nmanifest:b=x, y"),
            (JSON_VAR, r#"{"annotations":["manifest:c=3"]}"#),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(var, ANNOTATIONS_VAR);
        assert_eq!(a.place("wasip1", "wasm").manifest["b"], "x, y");
        // metadata-action's JSON output, as its README shows it.
        let json = r#"{"tags":["name/app:1.2.3"],"tag-names":["1.2.3"],"labels":{"org.opencontainers.image.title":"app"},"annotations":["manifest:org.opencontainers.image.title=app","manifest:org.opencontainers.image.description=a, b"]}"#;
        let (a, var) = UserAnnotations::from_env(&env(&[(JSON_VAR, json)]))
            .unwrap()
            .unwrap();
        assert_eq!(var, JSON_VAR);
        let placed = a.place("wasip1", "wasm").manifest;
        assert_eq!(placed["org.opencontainers.image.description"], "a, b");
        assert_eq!(placed["org.opencontainers.image.title"], "app");
        assert!(UserAnnotations::from_env(&env(&[(JSON_VAR, "{")])).is_err());
    }
}
