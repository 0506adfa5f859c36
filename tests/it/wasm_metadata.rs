//! What release workflows bring along, against the real registry: modules and components whose
//! metadata sections the `wasm-metadata` crate wrote become the annotations wkg would write;
//! docker/metadata-action's `annotations` output, or its environment variables, are taken as
//! they are; and `allowed-imports` gates a push before anything is sent and a verify after the
//! pull.

use crate::common;

use std::collections::BTreeMap;

use common::*;
use wasm_metadata::{
    AddMetadata, AddMetadataField, Authors, Description, Homepage, Licenses, Revision, Source,
    Version,
};

const DESCRIPTION: &str = "org.opencontainers.image.description";
const AUTHORS: &str = "org.opencontainers.image.authors";
const LICENSES: &str = "org.opencontainers.image.licenses";
const URL: &str = "org.opencontainers.image.url";
const VERSION: &str = "org.opencontainers.image.version";
const REVISION: &str = "org.opencontainers.image.revision";
const SOURCE: &str = "org.opencontainers.image.source";
const TITLE: &str = "org.opencontainers.image.title";

/// `wasm` with every metadata section set, as `wasm-tools metadata add` (and wkg) write them.
fn with_metadata(wasm: &[u8], source: &str, revision: &str) -> Vec<u8> {
    let mut add = AddMetadata::default();
    add.name = AddMetadataField::Set("calculator".to_owned());
    add.version = AddMetadataField::Set(Version::new("0.4.2"));
    add.description = AddMetadataField::Set(Description::new("Multiplies numbers"));
    add.authors = AddMetadataField::Set(Authors::new("Ada <ada@example.com>"));
    add.licenses = AddMetadataField::Set(Licenses::new("MIT OR Apache-2.0").unwrap());
    add.source = AddMetadataField::Set(Source::new(source).unwrap());
    add.homepage = AddMetadataField::Set(Homepage::new("https://calc.example.com").unwrap());
    add.revision = AddMetadataField::Set(Revision::new(revision.to_owned()));
    add.to_wasm(wasm).unwrap()
}

/// The manifest's annotations as the registry holds them under `tag`.
fn manifest_annotations(registry: &Registry, repo: &str, tag: &str) -> BTreeMap<String, String> {
    let (bytes, _) = registry.manifest(repo, tag).expect("the tag exists");
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    serde_json::from_value(manifest["annotations"].clone()).unwrap()
}

/// The runner's environment on a branch push (no version from the git ref), pushing
/// `file` from the workspace with `inputs` besides.
fn branch_env(
    ws: &Workspace,
    image: &str,
    file: &str,
    inputs: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let all = [
        &[("image", image), ("path", file), ("insecure", "true")][..],
        inputs,
    ]
    .concat();
    let mut env = ws.action_env(&all);
    env.insert("GITHUB_REF".into(), "refs/heads/main".into());
    env.insert("GITHUB_REF_NAME".into(), "main".into());
    env.insert("GITHUB_REF_TYPE".into(), "branch".into());
    env
}

#[test]
fn a_modules_metadata_sections_become_the_annotations_wkg_writes() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let module = std::fs::read(multiply_wasm()).unwrap();
    // The same repository as the git context (`.git` aside), another commit.
    let embedded_revision = "fedcba9876543210fedcba9876543210fedcba98";
    ws.write(
        "calc.wasm",
        &with_metadata(
            &module,
            "https://github.com/acme/multiply.git",
            embedded_revision,
        ),
    );
    let image = format!("{}/acme/calc", registry.host());
    let run = ws.run_action(&branch_env(&ws, &image, "calc.wasm", &[("tags", "")]));
    assert!(run.success(), "{run:?}");

    let annotations = manifest_annotations(&registry, "acme/calc", "main");
    // wkg's publisher, key for key.
    assert_eq!(annotations[DESCRIPTION], "Multiplies numbers");
    assert_eq!(annotations[AUTHORS], "Ada <ada@example.com>");
    assert_eq!(annotations[LICENSES], "MIT OR Apache-2.0");
    // wasm-metadata reads a URL as a URL: wkg writes it with the path's `/` too.
    assert_eq!(annotations[URL], "https://calc.example.com/");
    // A branch name is no version: the module's own comes before it.
    assert_eq!(annotations[VERSION], "0.4.2");
    // The git context comes before the module's sections, with a warning where they disagree.
    assert_eq!(annotations[SOURCE], "https://github.com/acme/multiply");
    assert_eq!(annotations[REVISION], COMMIT);
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::warning"))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`revision` section says `fedcba98")
                && w.contains(COMMIT)
                && w.contains("the git context wins")),
        "{run:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("`source` section")),
        "the same repository is no disagreement: {run:?}"
    );

    // The `annotations` output lists what was set, as `key=value` lines.
    let outputs = ws.outputs();
    let listed: BTreeMap<String, String> = outputs["annotations"]
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(listed, annotations);
    // The `metadata` output shows the sections as the module has them.
    let metadata: serde_json::Value = serde_json::from_str(&outputs["metadata"]).unwrap();
    assert_eq!(metadata["wasm-metadata"]["name"], "calculator");
    assert_eq!(metadata["wasm-metadata"]["revision"], embedded_revision);
    assert_eq!(metadata["annotations"][AUTHORS], "Ada <ada@example.com>");

    // `inspect` shows them from the registry.
    let inspect = ws.run_cli(&["inspect", &format!("{image}:main"), "--insecure"], &[]);
    assert!(inspect.success(), "{inspect:?}");
    let doc: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(doc["annotations"][DESCRIPTION], "Multiplies numbers");
    assert_eq!(doc["annotations"][URL], "https://calc.example.com/");

    // A git tag's version comes before the module's.
    let mut tagged = branch_env(&ws, &image, "calc.wasm", &[]);
    tagged.insert("GITHUB_REF".into(), "refs/tags/v1.2.3".into());
    let run = ws.run_action(&tagged);
    assert!(run.success(), "{run:?}");
    assert_eq!(
        manifest_annotations(&registry, "acme/calc", "1.2.3")[VERSION],
        "1.2.3"
    );
}

#[test]
fn a_components_sections_yield_to_the_inputs_which_the_warning_names() {
    let registry = Registry::start();
    let ws = Workspace::new();
    ws.write(
        "component.wasm",
        &with_metadata(&component_wasm(), "https://github.com/someone/else", COMMIT),
    );
    let image = format!("{}/acme/component", registry.host());
    let run = ws.run_action(&branch_env(
        &ws,
        &image,
        "component.wasm",
        &[
            ("tags", "0.9.0"),
            ("annotations", "org.opencontainers.image.source=https://github.com/acme/component\norg.opencontainers.image.licenses=Apache-2.0"),
        ],
    ));
    assert!(run.success(), "{run:?}");
    let annotations = manifest_annotations(&registry, "acme/component", "0.9.0");
    assert_eq!(annotations[SOURCE], "https://github.com/acme/component");
    assert_eq!(
        annotations[LICENSES], "Apache-2.0",
        "the input over the section"
    );
    assert_eq!(
        annotations[VERSION], "0.9.0",
        "the tags given over the section"
    );
    assert_eq!(annotations[DESCRIPTION], "Multiplies numbers");
    assert_eq!(annotations[REVISION], COMMIT);
    let warning = run
        .stdout
        .lines()
        .find(|l| l.starts_with("::warning") && l.contains("`source` section"))
        .unwrap_or_else(|| panic!("no warning about the source: {run:?}"));
    assert!(
        warning.contains("https://github.com/someone/else")
            && warning.contains("input `annotations`' `https://github.com/acme/component` wins"),
        "{warning}"
    );
    assert!(
        !run.stdout.contains("`revision` section"),
        "the same commit is no disagreement: {run:?}"
    );
}

// metadata-action's `annotations` output and environment, as its README and source write
// them (`DOCKER_METADATA_ANNOTATIONS_LEVELS` gives the prefixes; unknown repository fields
// come as `key=`).
const OUTPUT: &str = "manifest:org.opencontainers.image.created=2024-05-01T10:00:00.000Z\n\
                  manifest:org.opencontainers.image.description=\n\
                  manifest:org.opencontainers.image.title=multiply\n\
                  index:org.opencontainers.image.title=multiply\n\
                  index:org.opencontainers.image.vendor=Acme\n\
                  manifest-descriptor:org.opencontainers.image.title=multiply";
const JSON: &str = r#"{"tags":["ghcr.io/acme/multiply:1.2.3"],"tag-names":["1.2.3"],"labels":{},"annotations":["manifest:org.opencontainers.image.title=multiply","manifest:org.opencontainers.image.vendor=Acme, Inc."]}"#;

#[test]
fn metadata_action_annotations_are_taken_as_they_are() {
    struct Case {
        name: &'static str,
        input: &'static str,
        env: &'static [(&'static str, &'static str)],
        want: &'static [(&'static str, &'static str)],
        absent: &'static [&'static str],
        log: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "the output in the input",
            input: OUTPUT,
            env: &[],
            want: &[
                (TITLE, "multiply"),
                ("org.opencontainers.image.vendor", "Acme"),
                (
                    "org.opencontainers.image.created",
                    "2024-05-01T10:00:00.000Z",
                ),
            ],
            // `key=` sets nothing: the module's description (none here) is not blanked.
            absent: &[DESCRIPTION],
            log: &[
                "::notice::annotations at level `index:` are written on the manifest",
                "::notice::annotations at level `manifest-descriptor:` are left out",
            ],
        },
        Case {
            name: "the environment, the input empty",
            input: "",
            env: &[
                ("DOCKER_METADATA_OUTPUT_ANNOTATIONS", OUTPUT),
                ("DOCKER_METADATA_OUTPUT_JSON", JSON),
            ],
            want: &[
                (TITLE, "multiply"),
                ("org.opencontainers.image.vendor", "Acme"),
            ],
            absent: &[DESCRIPTION],
            log: &[
                "annotations: the input is empty; using DOCKER_METADATA_OUTPUT_ANNOTATIONS from docker/metadata-action",
            ],
        },
        Case {
            name: "the JSON alone",
            input: "",
            env: &[("DOCKER_METADATA_OUTPUT_JSON", JSON)],
            want: &[
                (TITLE, "multiply"),
                ("org.opencontainers.image.vendor", "Acme, Inc."),
            ],
            absent: &[],
            log: &[
                "annotations: the input is empty; using DOCKER_METADATA_OUTPUT_JSON from docker/metadata-action",
            ],
        },
        Case {
            name: "the input over the environment",
            input: "org.opencontainers.image.vendor=Given",
            env: &[("DOCKER_METADATA_OUTPUT_ANNOTATIONS", OUTPUT)],
            want: &[
                ("org.opencontainers.image.vendor", "Given"),
                (TITLE, "multiply"),
            ],
            absent: &[],
            log: &[],
        },
    ];
    let registry = Registry::start();
    for (i, case) in cases.iter().enumerate() {
        let ws = Workspace::new();
        let image = format!("{}/acme/multiply", registry.host());
        let tag = format!("case-{i}");
        let mut env = ws.multiply_env(
            &image,
            &[
                ("insecure", "true"),
                ("tags", &tag),
                ("annotations", case.input),
            ],
        );
        for (k, v) in case.env {
            env.insert(k.to_string(), v.to_string());
        }
        let run = ws.run_action(&env);
        assert!(run.success(), "{}: {run:?}", case.name);
        let annotations = manifest_annotations(&registry, "acme/multiply", &tag);
        for (key, value) in case.want {
            assert_eq!(
                annotations.get(*key).map(String::as_str),
                Some(*value),
                "{}: {key}",
                case.name
            );
        }
        for key in case.absent {
            assert!(!annotations.contains_key(*key), "{}: {key} set", case.name);
        }
        for line in case.log {
            assert!(
                run.stdout.contains(line),
                "{}: no {line:?} in {run:?}",
                case.name
            );
        }
        if case.name == "the input over the environment" {
            assert!(!run.stdout.contains("DOCKER_METADATA_OUTPUT"), "{run:?}");
        }
    }
}

#[test]
fn allowed_imports_refuses_a_push_before_anything_is_sent() {
    let registry = Registry::start();
    let ws = Workspace::new();
    ws.write("component.wasm", &component_wasm());
    let image = format!("{}/acme/component", registry.host());
    let inputs = |allowed: &'static str| {
        ws.action_env(&[
            ("image", &image),
            ("path", "component.wasm"),
            ("insecure", "true"),
            ("tags", "1.0.0"),
            ("allowed-imports", allowed),
        ])
    };
    let run = ws.run_action(&inputs("wasi:cli/*\nwasi:http/outgoing-handler"));
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].contains("input `allowed-imports`")
            && errors[0].contains("imports `wasi:random/random@0.2.0` outside allowed-imports (`wasi:cli/*`, `wasi:http/outgoing-handler`)"),
        "{}",
        errors[0]
    );
    assert_eq!(registry.upload_count(), 0, "nothing was sent");
    assert!(registry.tags("acme/component").is_empty());

    // Comma-separated, a version-less pattern allows every version.
    let run = ws.run_action(&inputs("wasi:cli/*, wasi:random/random"));
    assert!(run.success(), "{run:?}");
    assert_eq!(registry.image_tags("acme/component"), ["1.0.0"]);

    // A core module's imports are no interfaces: the policy cannot hold.
    let run = ws.run_action(&ws.multiply_env(
        &image,
        &[("insecure", "true"), ("allowed-imports", "wasi:*")],
    ));
    assert!(!run.success(), "{run:?}");
    assert!(run.error_lines()[0].contains("is a core module"), "{run:?}");
}

#[test]
fn verify_checks_the_pulled_configs_imports_against_allowed_imports() {
    let registry = Registry::start();
    let ws = Workspace::new();
    ws.write("component.wasm", &component_wasm());
    let image = format!("{}/acme/component", registry.host());
    let run = ws.run_action(&ws.action_env(&[
        ("image", &image),
        ("path", "component.wasm"),
        ("insecure", "true"),
        ("tags", "1.0.0"),
    ]));
    assert!(run.success(), "{run:?}");
    let pinned = format!("{image}@{}", ws.outputs()["digest"]);
    let verify = |allowed: &str| {
        ws.run_action(&ws.action_env(&[
            ("command", "verify"),
            ("image", &pinned),
            ("insecure", "true"),
            ("allowed-imports", allowed),
            // Pushed without an OIDC token: unsigned, accepted knowingly.
            ("require-signature", "false"),
        ]))
    };

    let run = verify("wasi:cli/*,wasi:http/*");
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].contains(
            "allowed imports: imports `wasi:random/random@0.2.0` outside allowed-imports"
        ),
        "{}",
        errors[0]
    );
    assert!(
        ws.summary().contains("| allowed imports | ❌ FAIL |"),
        "{}",
        ws.summary()
    );

    let run = verify("wasi:*");
    assert!(run.success(), "{run:?}");
    assert!(
        ws.summary().contains(
            "| allowed imports | ✅ pass | 1 imports in the config, each within `wasi:*` |"
        ),
        "{}",
        ws.summary()
    );

    // wasm-to-oci's config records no imports: the validated layer's are checked.
    let run = ws.run_action(&ws.action_env(&[
        ("image", &image),
        ("path", "component.wasm"),
        ("insecure", "true"),
        ("tags", "legacy"),
        ("format", "wasm-to-oci"),
    ]));
    assert!(run.success(), "{run:?}");
    let legacy = format!("{image}@{}", ws.outputs()["digest"]);
    let run = ws.run_action(&ws.action_env(&[
        ("command", "verify"),
        ("image", &legacy),
        ("insecure", "true"),
        ("allowed-imports", "wasi:cli/*"),
        ("require-signature", "false"),
    ]));
    assert!(!run.success(), "{run:?}");
    assert!(
        ws.summary()
            .contains("| allowed imports | ❌ FAIL | imports `wasi:random/random@0.2.0` outside allowed-imports (`wasi:cli/*`) |"),
        "{}",
        ws.summary()
    );

    // A bad pattern is an input error, before anything is read.
    let run = verify("wasi:[cli");
    assert!(!run.success(), "{run:?}");
    assert!(
        run.error_lines()[0]
            .contains("input `allowed-imports`: `wasi:[cli` is not an interface pattern"),
        "{run:?}"
    );
}
