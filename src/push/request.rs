//! The typed request both front doors build: `wasm-oci action` from `INPUT_*` variables and the
//! CLI from flags. Both first collect raw values into [`Inputs`] under the action's input names;
//! [`PushRequest::from_inputs`] then parses them once, with errors that name the input.

use std::path::PathBuf;

use crate::artifact::Format;
use crate::build::BuildSpec;
use crate::context::Env;
use crate::error::{Error, Result};
use crate::files;
use crate::input;
use crate::inputs::Inputs;
use crate::provenance::dsse::SigningKey;
use crate::provenance::levels::UserAnnotations;
use crate::reference::{Destination, Tag};
use crate::registry::remote::Connection;
use crate::request::{allowed_imports, connection};
use crate::secret::Secret;
use crate::sigstore::{SignMode, TrustConfig};
use crate::targets::{Named, PushTarget};
use crate::wasm::policy::AllowedImports;

/// Where the `.wasm` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WasmSource {
    /// Locate mode: a file or a glob matching exactly one file, relative to the working directory.
    Path(String),
    /// Build mode: cargo builds it.
    Build(BuildSpec),
}

/// Everything a push needs, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRequest {
    /// Where the artifact goes: the first of `targets`, or an OCI layout.
    pub destination: Destination,
    /// Every tag named, for every image; empty means "derive from the git ref".
    pub tags: Vec<Tag>,
    /// Every registry repository the artifact goes to, each with its tags (`destination` first).
    pub targets: Vec<PushTarget>,
    /// The Wasm file.
    pub source: WasmSource,
    /// The directory paths are relative to.
    pub working_directory: PathBuf,
    /// Media types.
    pub format: Format,
    /// User annotations, merged over the generated ones, with metadata-action's level prefixes.
    pub annotations: UserAnnotations,
    /// How to reach the registry: plain HTTP or not, extra CA certificates, and the credentials
    /// given (whose `github-token` also reads repository metadata through the GitHub API).
    pub connection: Connection,
    /// Write to a local OCI layout instead of the registry.
    pub dry_run: bool,
    /// The OCI layout directory a dry run writes, relative to the current directory (the
    /// workspace, in action mode).
    pub dry_run_layout: PathBuf,
    /// Attach an SLSA provenance statement as a referrer.
    pub provenance: bool,
    /// Attach a CycloneDX SBOM of the crates linked into the `.wasm` (build mode only).
    pub sbom: bool,
    /// The PEM private key that signs the provenance (already checked to parse).
    pub signing_key: Option<Secret>,
    /// Keyless signing with Sigstore: `auto`, always, or never.
    pub sign: SignMode,
    /// The Sigstore instance to sign with, instead of the one the repository's visibility picks.
    pub sigstore_trust_config: Option<TrustConfig>,
    /// The interfaces the component may import; checked before anything is sent.
    pub allowed_imports: Option<AllowedImports>,
}

impl PushRequest {
    /// Parses `inputs` into a request. Where `tags` or `annotations` is empty, what
    /// docker/metadata-action left in the job's environment `env` stands in, for both front
    /// doors alike.
    pub fn from_inputs(inputs: &Inputs, env: &Env) -> Result<Self> {
        // Several images, or full references in `tags` (docker/metadata-action's output); a
        // tag given twice is pushed and reported once.
        let Named {
            destination,
            targets,
            tags,
        } = crate::targets::parse(&inputs.list(input::IMAGE), &tags(inputs, env))?;

        let working_directory =
            PathBuf::from(inputs.get(input::WORKING_DIRECTORY).unwrap_or_default());
        if !working_directory.is_dir() {
            return Err(Error::input(
                input::WORKING_DIRECTORY,
                format!("`{}` is not a directory", working_directory.display()),
            ));
        }

        let source = wasm_source(inputs, &working_directory)?;

        // In action mode a layout is written inside the workspace only.
        let confinement = inputs.confinement.as_ref();
        if let Destination::Layout(dir) = &destination {
            files::check_layout_dir(input::IMAGE, dir, confinement)?;
        }
        let dry_run = inputs.flag(input::DRY_RUN)?;
        let dry_run_layout = PathBuf::from(inputs.get(input::DRY_RUN_LAYOUT).unwrap_or_default());
        if dry_run && matches!(destination, Destination::Registry(_)) {
            files::check_layout_dir(input::DRY_RUN_LAYOUT, &dry_run_layout, confinement)?;
        }

        let format: Format = inputs
            .get(input::FORMAT)
            .unwrap_or_default()
            .parse()
            .map_err(|e| Error::input(input::FORMAT, e))?;

        let annotations = annotations(inputs, env)?;
        let allowed_imports = allowed_imports(inputs)?;

        let connection = connection(inputs, &destination, env)?;

        let provenance = inputs.flag(input::PROVENANCE)?;
        if inputs.get(input::SIGNING_KEY).is_some() && !provenance {
            return Err(Error::input(
                input::SIGNING_KEY,
                "signs the provenance, which `provenance: false` turns off; drop one of the two",
            ));
        }
        let signing_key = inputs
            .get(input::SIGNING_KEY)
            .map(|value| read_signing_key(value, &working_directory, confinement))
            .transpose()?;

        let sign: SignMode = inputs
            .get(input::SIGN)
            .unwrap_or_default()
            .parse()
            .map_err(|e| Error::input(input::SIGN, e))?;
        if sign == SignMode::Always && !provenance {
            return Err(Error::input(
                input::SIGN,
                "signs the provenance, which `provenance: false` turns off; drop one of the two",
            ));
        }
        let sigstore_trust_config = inputs
            .get(input::SIGSTORE_TRUST_CONFIG)
            .map(|value| TrustConfig::read(value, &working_directory))
            .transpose()?;

        // Only a build knows the crates linked in: `sbom` is a build-mode input.
        let sbom = matches!(&source, WasmSource::Build(spec) if spec.sbom);
        Ok(PushRequest {
            destination,
            tags,
            targets,
            source,
            working_directory,
            format,
            annotations,
            connection,
            dry_run,
            dry_run_layout,
            provenance,
            sbom,
            signing_key,
            sign,
            sigstore_trust_config,
            allowed_imports,
        })
    }
}

/// The `tags` input; when it is empty, the tags docker/metadata-action exported for later steps
/// (`DOCKER_METADATA_OUTPUT_TAGS`, else `DOCKER_METADATA_OUTPUT_JSON`).
fn tags(inputs: &Inputs, env: &Env) -> Vec<String> {
    match crate::metadata_action::env_tags(env, inputs) {
        Some(found) => {
            found.log();
            match found.taken.is_empty() {
                true => inputs.list(input::TAGS),
                false => found.taken,
            }
        }
        None => inputs.list(input::TAGS),
    }
}

/// The `annotations` input; when it is empty, what docker/metadata-action exported for later
/// steps (`DOCKER_METADATA_OUTPUT_ANNOTATIONS`, else `DOCKER_METADATA_OUTPUT_JSON`).
fn annotations(inputs: &Inputs, env: &Env) -> Result<UserAnnotations> {
    if let Some(value) = inputs.get(input::ANNOTATIONS) {
        return UserAnnotations::parse(value).map_err(|e| Error::input(input::ANNOTATIONS, e));
    }
    match UserAnnotations::from_env(env).map_err(|e| Error::input(input::ANNOTATIONS, e))? {
        Some((annotations, var)) => {
            tracing::info!(
                "annotations: the input is empty; using {var} from docker/metadata-action"
            );
            Ok(annotations)
        }
        None => Ok(UserAnnotations::default()),
    }
}

/// The `signing-key` input's PEM text: the value itself when it is PEM, else the file it names,
/// relative to `working_directory` as `path` is, read by [`files::read_input_text`] (inside
/// the workspace or `RUNNER_TEMP` in action mode). Errors never quote a value that may be a
/// mangled key.
pub fn read_signing_key(
    value: &str,
    working_directory: &std::path::Path,
    confinement: Option<&files::Confinement>,
) -> Result<Secret> {
    let pem = if value.contains("-----BEGIN") {
        value.to_owned()
    } else {
        let path = working_directory.join(value);
        files::read_input_text(input::SIGNING_KEY, &path, confinement).map_err(|_| {
            Error::input(
                input::SIGNING_KEY,
                "is neither PEM text nor the path of a readable regular file of at most 1 MiB (inside the workspace or RUNNER_TEMP in action mode); give the PEM private key itself or a path to it",
            )
        })?
    };
    SigningKey::from_pem(&pem).map_err(|reason| Error::input(input::SIGNING_KEY, reason))?;
    Ok(Secret::new(pem))
}

/// Locate mode or build mode, from `build` and `path`: `auto` builds when `path` is empty and the
/// working directory has a Cargo.toml.
fn wasm_source(inputs: &Inputs, working_directory: &std::path::Path) -> Result<WasmSource> {
    let has_manifest = working_directory.join("Cargo.toml").is_file();
    match (
        inputs.get(input::BUILD).unwrap_or_default(),
        inputs.get(input::PATH),
    ) {
        ("auto" | "none", Some(path)) => return Ok(WasmSource::Path(path.to_owned())),
        ("auto", None) if has_manifest => {}
        ("cargo", None) => {}
        ("auto" | "none", None) => {
            return Err(Error::input(
                input::PATH,
                format!(
                    "is required: give the .wasm file or a glob such as `target/wasm32-wasip1/release/*.wasm`, or run in a directory with a Cargo.toml to build (`{}` has none)",
                    working_directory.display()
                ),
            ));
        }
        ("cargo", Some(_)) => {
            return Err(Error::input(
                input::PATH,
                "give either `path` (locate a built .wasm) or `build: cargo`, not both",
            ));
        }
        (other, _) => {
            return Err(Error::input(
                input::BUILD,
                format!("`{other}` is not supported; use `auto`, `cargo` or `none`"),
            ));
        }
    }
    if !has_manifest {
        return Err(Error::input(
            input::WORKING_DIRECTORY,
            format!(
                "`{}` has no Cargo.toml to build; set `working-directory` to the crate or workspace",
                working_directory.display()
            ),
        ));
    }
    let target = inputs.get(input::TARGET).unwrap_or_default();
    if !target.starts_with("wasm32") && !target.starts_with("wasm64") {
        return Err(Error::input(
            input::TARGET,
            format!(
                "`{target}` is not a WebAssembly target; use `wasm32-wasip1` (module), `wasm32-wasip2` (component) or `wasm32-unknown-unknown`"
            ),
        ));
    }
    let cargo_args = match inputs.get(input::CARGO_ARGS) {
        Some(args) => shlex::split(args).ok_or_else(|| {
            Error::input(input::CARGO_ARGS, format!("`{args}` has an unclosed quote"))
        })?,
        None => Vec::new(),
    };
    Ok(WasmSource::Build(BuildSpec {
        working_directory: working_directory.to_owned(),
        package: inputs.get(input::PACKAGE).map(str::to_owned),
        target: target.to_owned(),
        profile: inputs.get(input::PROFILE).unwrap_or_default().to_owned(),
        features: inputs
            .list(input::FEATURES)
            .into_iter()
            .flat_map(|f| f.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect(),
        cargo_args,
        sbom: inputs.flag(input::SBOM)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::action_env;

    #[test]
    fn key_and_ca_paths_are_relative_to_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let key = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg4izgFDxJpZmkMy4y
lmaWM1ibdyQH3aPhQ9AxU71ZiLehRANCAATQ/7Hh7Gnvahx9Ib/wHBSPihGzHiZL
FnPQ621zKdM6N2kC7ZnJeMA1DqnNRoUYshQQ/tiZYACvaCjBKw1yuKXL
-----END PRIVATE KEY-----";
        std::fs::write(dir.path().join("signing.pem"), key).unwrap();
        std::fs::write(
            dir.path().join("ca.pem"),
            "-----BEGIN CERTIFICATE-----\nYSBDQQ==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let read = read_signing_key("signing.pem", dir.path(), None).unwrap();
        assert_eq!(read.expose(), key);
        assert!(
            read_signing_key("signing.pem", std::path::Path::new("."), None).is_err(),
            "not looked up in the process's directory"
        );

        let destination = Destination::parse("localhost:5000/app").unwrap();
        let workdir = dir.path().to_str().unwrap();
        let env = action_env(&[
            ("INPUT_WORKING-DIRECTORY", workdir),
            ("INPUT_CA-FILE", "ca.pem"),
        ]);
        let found = connection(&Inputs::from_action_env(&env), &destination, &env).unwrap();
        assert_eq!(found.ca_file, Some(dir.path().join("ca.pem")));
        let env = action_env(&[("INPUT_CA-FILE", "ca.pem")]);
        assert!(connection(&Inputs::from_action_env(&env), &destination, &env).is_err());
    }

    #[test]
    fn runner_variables_keep_hyphens_and_trim() {
        let env = action_env(&[
            ("INPUT_WORKING-DIRECTORY", "  . \n"),
            ("INPUT_IMAGE", " localhost:5000/app "),
            ("INPUT_PATH", "a.wasm"),
            ("INPUT_TAGS", "v1\n v2 ,latest"),
            ("INPUT_INSECURE", "True"),
        ]);
        let inputs = Inputs::from_action_env(&env);
        assert_eq!(inputs.get(input::WORKING_DIRECTORY), Some("."));
        assert_eq!(inputs.get(input::PACKAGE), None, "empty means not given");
        assert_eq!(
            inputs.get(input::FORMAT),
            Some("cncf"),
            "not given reads as the default"
        );
        let req = PushRequest::from_inputs(&inputs, &Env::new()).unwrap();
        assert_eq!(
            req.tags.iter().map(Tag::to_string).collect::<Vec<_>>(),
            ["v1", "v2", "latest"]
        );
        assert!(req.connection.insecure);
        assert_eq!(req.format, Format::Cncf);
    }

    #[test]
    fn an_empty_github_token_falls_back_to_the_environment() {
        // A `docker://` step: no `INPUT_GITHUB-TOKEN` at all, the token in `env:`.
        let mut env: Env = [
            ("INPUT_IMAGE", "ghcr.io/acme/app"),
            ("INPUT_PATH", "a.wasm"),
            ("GITHUB_TOKEN", "ghs_fromEnv"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let inputs = Inputs::from_action_env(&env);
        assert!(Inputs::github_token_from_env(&env));
        assert_eq!(inputs.get(input::GITHUB_TOKEN), Some("ghs_fromEnv"));
        assert_eq!(inputs.secrets(), ["ghs_fromEnv"], "masked as the input is");
        let req = PushRequest::from_inputs(&inputs, &Env::new()).unwrap();
        assert_eq!(
            req.connection.given.github_token().unwrap().expose(),
            "ghs_fromEnv"
        );

        // The input, when given, wins.
        env.insert("INPUT_GITHUB-TOKEN".into(), "ghs_input".into());
        assert!(!Inputs::github_token_from_env(&env));
        let inputs = Inputs::from_action_env(&env);
        assert_eq!(inputs.get(input::GITHUB_TOKEN), Some("ghs_input"));
    }

    #[test]
    fn errors_name_the_input() {
        let err = |pairs: &[(&str, &str)]| {
            let mut all = vec![
                ("INPUT_IMAGE", "localhost:5000/app"),
                ("INPUT_PATH", "a.wasm"),
            ];
            all.extend_from_slice(pairs);
            PushRequest::from_inputs(&Inputs::from_action_env(&action_env(&all)), &Env::new())
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[("INPUT_INSECURE", "yes")]).starts_with("input `insecure`"));
        assert!(err(&[("INPUT_TAGS", "bad tag")]).starts_with("input `tags`"));
        assert!(err(&[("INPUT_FORMAT", "docker")]).starts_with("input `format`"));
        assert!(err(&[("INPUT_USERNAME", "u")]).starts_with("input `password`"));
        assert!(err(&[("INPUT_ANNOTATIONS", "novalue")]).starts_with("input `annotations`"));
        assert!(err(&[("INPUT_IMAGE", "Bad Name")]).starts_with("input `image`"));
        // The crate root has a Cargo.toml, so an empty `path` builds unless `build: none`.
        assert!(err(&[("INPUT_PATH", ""), ("INPUT_BUILD", "none")]).starts_with("input `path`"));
        assert!(err(&[("INPUT_BUILD", "cargo")]).starts_with("input `path`: give either"));
        assert!(err(&[("INPUT_BUILD", "make")]).starts_with("input `build`"));
        let build = |pairs: &[(&str, &str)]| err(&[&[("INPUT_PATH", "")], pairs].concat());
        assert!(
            build(&[("INPUT_TARGET", "x86_64-unknown-linux-gnu")]).starts_with("input `target`")
        );
        assert!(build(&[("INPUT_CARGO-ARGS", "--bin 'a")]).starts_with("input `cargo-args`"));
        assert!(err(&[("INPUT_PROVENANCE", "no")]).starts_with("input `provenance`"));
        assert!(err(&[("INPUT_SIGN", "yes")]).starts_with("input `sign`: `yes` is not"));
        assert!(
            err(&[("INPUT_SIGN", "true"), ("INPUT_PROVENANCE", "false")])
                .starts_with("input `sign`: signs the provenance")
        );
        let missing = err(&[("INPUT_SIGSTORE-TRUST-CONFIG", "missing.json")]);
        assert!(
            missing.starts_with("input `sigstore-trust-config`: cannot read `")
                && missing.contains("missing.json`: no such file"),
            "{missing}"
        );
        assert!(
            err(&[
                ("INPUT_PROVENANCE", "false"),
                ("INPUT_SIGNING-KEY", "k.pem")
            ])
            .starts_with("input `signing-key`: signs the provenance")
        );
        assert!(
            err(&[("INPUT_SIGNING-KEY", "no-such-file.pem")])
                .starts_with("input `signing-key`: is neither PEM text nor the path")
        );
    }

    #[test]
    fn build_mode_when_path_is_empty_and_a_cargo_toml_is_here() {
        let env = action_env(&[
            ("INPUT_IMAGE", "oci:out"),
            ("INPUT_TARGET", "wasm32-wasip2"),
            ("INPUT_FEATURES", "a, b c"),
            (
                "INPUT_CARGO-ARGS",
                "--locked --config 'profile.release.lto = true'",
            ),
        ]);
        let req = PushRequest::from_inputs(&Inputs::from_action_env(&env), &env).unwrap();
        let WasmSource::Build(spec) = req.source else {
            panic!("not build mode: {:?}", req.source)
        };
        assert_eq!(spec.target, "wasm32-wasip2");
        assert_eq!(spec.profile, "release");
        assert_eq!(spec.features, ["a", "b", "c"]);
        assert_eq!(
            spec.cargo_args,
            ["--locked", "--config", "profile.release.lto = true"]
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let env = action_env(&[
            ("INPUT_IMAGE", "localhost:5000/app"),
            ("INPUT_PATH", "a.wasm"),
            ("INPUT_USERNAME", "bot"),
            ("INPUT_PASSWORD", "s3cr3t-value"),
        ]);
        let inputs = Inputs::from_action_env(&env);
        assert_eq!(inputs.secrets(), ["s3cr3t-value"]);
        let req = PushRequest::from_inputs(&inputs, &Env::new()).unwrap();
        assert!(!format!("{req:?}").contains("s3cr3t-value"));
    }
}
