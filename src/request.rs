//! The typed request both front doors build: `wasm-oci action` from `INPUT_*` variables and the
//! CLI from flags. Both first collect raw values into [`Inputs`] under the action's input names;
//! [`PushRequest::from_inputs`] then parses them once, with errors that name the input.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::artifact::Format;
use crate::build::{BuildSpec, DEFAULT_PROFILE, DEFAULT_TARGET};
use crate::context::Env;
use crate::error::{Error, Result};
use crate::provenance::dsse::SigningKey;
use crate::provenance::levels::UserAnnotations;
use crate::reference::{Destination, Tag};
use crate::registry::remote::Connection;
use crate::secret::Secret;
use crate::sigstore::{SignMode, TrustConfig};
use crate::wasm::policy::AllowedImports;

/// Every input the action declares in action.yml; a test keeps the two in step.
pub const INPUT_NAMES: &[&str] = &[
    "command",
    "image",
    "tags",
    "path",
    "build",
    "working-directory",
    "package",
    "target",
    "profile",
    "features",
    "cargo-args",
    "format",
    "annotations",
    "username",
    "password",
    "github-token",
    "insecure",
    "ca-file",
    "dry-run",
    "dry-run-layout",
    "provenance",
    "signing-key",
    "sign",
    "sigstore-trust-config",
    "output",
    "layer",
    "expect-source",
    "expect-revision",
    "public-key",
    "certificate-identity",
    "certificate-identity-regexp",
    "certificate-oidc-issuer",
    "allowed-imports",
];

/// The default of every input that has one, as action.yml declares it; a test keeps the two in
/// step. [`Inputs::get`] falls back to these, so each reader sees the same default.
pub const INPUT_DEFAULTS: &[(&str, &str)] = &[
    ("command", "push"),
    ("build", "auto"),
    ("working-directory", "."),
    ("target", DEFAULT_TARGET),
    ("profile", DEFAULT_PROFILE),
    ("format", "cncf"),
    ("insecure", "false"),
    ("dry-run", "false"),
    ("dry-run-layout", DRY_RUN_LAYOUT),
    ("provenance", "true"),
    ("sign", "auto"),
];

/// Where a dry run writes its OCI layout unless `dry-run-layout` says otherwise: a directory in
/// the workspace (not hidden, so `actions/upload-artifact` takes it as it is).
pub const DRY_RUN_LAYOUT: &str = "wasm-oci-dry-run";

/// The default of input `name`, if it has one.
pub fn default_for(name: &str) -> Option<&'static str> {
    INPUT_DEFAULTS
        .iter()
        .find(|(input, _)| *input == name)
        .map(|(_, value)| *value)
}

/// The variable `github-token` falls back to when the input is empty.
pub const GITHUB_TOKEN_VAR: &str = "GITHUB_TOKEN";

/// Inputs whose values are secrets: masked before anything else is printed.
pub const SECRET_INPUTS: &[&str] = &["password", "signing-key", "github-token"];

/// Raw input values by input name. Values are trimmed; an empty value means "not given".
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.values.iter().map(|(k, v)| {
                let shown = if SECRET_INPUTS.contains(&k.as_str()) {
                    "***"
                } else {
                    v
                };
                (k, shown)
            }))
            .finish()
    }
}

impl Inputs {
    /// Reads the inputs the runner passes to a container action: `INPUT_<NAME>`, the name
    /// upper-cased with spaces as `_` and hyphens kept.
    pub fn from_action_env(env: &Env) -> Self {
        let mut inputs = Inputs::default();
        for name in INPUT_NAMES {
            let var = format!("INPUT_{}", name.to_uppercase().replace(' ', "_"));
            if let Some(value) = env.get(&var) {
                inputs.set(name, value);
            }
        }
        // A `docker://` step gets none of action.yml's defaults, so not `${{ github.token }}`;
        // the job's token reaches it as `env: GITHUB_TOKEN`, the name GitHub's own tools read.
        if inputs.get("github-token").is_none()
            && let Some(token) = env.get(GITHUB_TOKEN_VAR)
        {
            inputs.set("github-token", token);
        }
        inputs
    }

    /// Whether `github-token` came from the `GITHUB_TOKEN` variable rather than the input.
    pub fn github_token_from_env(env: &Env) -> bool {
        let given = env
            .get("INPUT_GITHUB-TOKEN")
            .is_some_and(|v| !v.trim().is_empty());
        !given
            && env
                .get(GITHUB_TOKEN_VAR)
                .is_some_and(|v| !v.trim().is_empty())
    }

    /// Sets `name` to `value` (trimmed); an empty value removes it.
    pub fn set(&mut self, name: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            self.values.remove(name);
        } else {
            self.values.insert(name.to_owned(), value.to_owned());
        }
    }

    /// The value of `name` if given, else its default ([`INPUT_DEFAULTS`]), if it has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .or_else(|| default_for(name))
    }

    /// A YAML boolean (`true|True|TRUE|false|False|FALSE`); `false` when neither given nor
    /// defaulted.
    pub fn flag(&self, name: &'static str) -> Result<bool> {
        match self.get(name) {
            None => Ok(false),
            Some("true" | "True" | "TRUE") => Ok(true),
            Some("false" | "False" | "FALSE") => Ok(false),
            Some(other) => Err(Error::input(
                name,
                format!("`{other}` is not a boolean; use `true` or `false`"),
            )),
        }
    }

    /// A list given one per line or comma-separated; blank items are dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(['\n', ','])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The secret values given, for masking.
    pub fn secrets(&self) -> Vec<&str> {
        SECRET_INPUTS.iter().filter_map(|n| self.get(n)).collect()
    }
}

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
    /// Where the artifact goes.
    pub destination: Destination,
    /// Tags to put; empty means "derive from the git ref".
    pub tags: Vec<Tag>,
    /// The Wasm file.
    pub source: WasmSource,
    /// The directory paths are relative to.
    pub working_directory: PathBuf,
    /// Media types.
    pub format: Format,
    /// User annotations, merged over the generated ones, with metadata-action's level prefixes.
    pub annotations: UserAnnotations,
    /// Basic credentials.
    pub credentials: Option<(String, Secret)>,
    /// A user name given without a password: ghcr.io then takes the `github-token`.
    pub username: Option<String>,
    /// The `github-token` input: reads repository metadata through the GitHub API, and is
    /// ghcr.io's credential when nothing else is given.
    pub github_token: Option<Secret>,
    /// Allow plain HTTP.
    pub insecure: bool,
    /// Extra CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// Write to a local OCI layout instead of the registry.
    pub dry_run: bool,
    /// The OCI layout directory a dry run writes, relative to the current directory (the
    /// workspace, in action mode).
    pub dry_run_layout: PathBuf,
    /// Attach an SLSA provenance statement as a referrer.
    pub provenance: bool,
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
    /// Parses `inputs` into a request.
    pub fn from_inputs(inputs: &Inputs) -> Result<Self> {
        let image = inputs.get("image").ok_or_else(|| {
            Error::input(
                "image",
                "is required: give `registry/repository`, or `oci:DIR` for a local OCI layout",
            )
        })?;
        let destination = Destination::parse(image).map_err(|e| Error::input("image", e))?;

        let tags = inputs
            .list("tags")
            .iter()
            .map(|t| t.parse::<Tag>().map_err(|e| Error::input("tags", e)))
            .collect::<Result<Vec<_>>>()?;
        // A tag given twice is pushed and reported once.
        let tags = tags
            .iter()
            .enumerate()
            .filter(|(i, t)| !tags[..*i].contains(t))
            .map(|(_, t)| t.clone())
            .collect();

        let working_directory = PathBuf::from(inputs.get("working-directory").unwrap_or_default());
        if !working_directory.is_dir() {
            return Err(Error::input(
                "working-directory",
                format!("`{}` is not a directory", working_directory.display()),
            ));
        }

        let source = wasm_source(inputs, &working_directory)?;

        let format: Format = inputs
            .get("format")
            .unwrap_or_default()
            .parse()
            .map_err(|e| Error::input("format", e))?;

        let annotations = UserAnnotations::parse(inputs.get("annotations").unwrap_or_default())
            .map_err(|e| Error::input("annotations", e))?;
        let allowed_imports = allowed_imports(inputs)?;

        let Connection {
            insecure,
            ca_file,
            credentials,
            username,
            github_token,
            ..
        } = connection(inputs, &destination)?;

        let provenance = inputs.flag("provenance")?;
        if inputs.get("signing-key").is_some() && !provenance {
            return Err(Error::input(
                "signing-key",
                "signs the provenance, which `provenance: false` turns off; drop one of the two",
            ));
        }
        let signing_key = inputs
            .get("signing-key")
            .map(|value| read_signing_key(value, &working_directory))
            .transpose()?;

        let sign: SignMode = inputs
            .get("sign")
            .unwrap_or_default()
            .parse()
            .map_err(|e| Error::input("sign", e))?;
        if sign == SignMode::Always && !provenance {
            return Err(Error::input(
                "sign",
                "signs the provenance, which `provenance: false` turns off; drop one of the two",
            ));
        }
        let sigstore_trust_config = inputs
            .get("sigstore-trust-config")
            .map(|value| TrustConfig::read(value, &working_directory))
            .transpose()?;

        Ok(PushRequest {
            destination,
            tags,
            source,
            working_directory,
            format,
            annotations,
            credentials,
            username,
            github_token,
            insecure,
            ca_file,
            dry_run: inputs.flag("dry-run")?,
            dry_run_layout: PathBuf::from(inputs.get("dry-run-layout").unwrap_or(DRY_RUN_LAYOUT)),
            provenance,
            signing_key,
            sign,
            sigstore_trust_config,
            allowed_imports,
        })
    }
}

/// The `allowed-imports` input, for push and verify.
pub(crate) fn allowed_imports(inputs: &Inputs) -> Result<Option<AllowedImports>> {
    inputs
        .get("allowed-imports")
        .map(|value| AllowedImports::parse(value).map_err(|e| Error::input("allowed-imports", e)))
        .transpose()
}

/// The `signing-key` input's PEM text: the value itself when it is PEM, else the file it names,
/// relative to `working_directory` as `path` is. Errors never quote the value, which may be a
/// mangled key.
pub fn read_signing_key(value: &str, working_directory: &std::path::Path) -> Result<Secret> {
    let pem = if value.contains("-----BEGIN") {
        value.to_owned()
    } else {
        let path = working_directory.join(value);
        let path = path.as_path();
        match std::fs::read_to_string(path) {
            Ok(text) if path.is_file() => text,
            _ => {
                return Err(Error::input(
                    "signing-key",
                    "is neither PEM text nor the path of a readable file; give the PEM private key itself or a path to it",
                ));
            }
        }
    };
    SigningKey::from_pem(&pem).map_err(|reason| Error::input("signing-key", reason))?;
    Ok(Secret::new(pem))
}

/// Locate mode or build mode, from `build` and `path`: `auto` builds when `path` is empty and the
/// working directory has a Cargo.toml.
fn wasm_source(inputs: &Inputs, working_directory: &std::path::Path) -> Result<WasmSource> {
    let has_manifest = working_directory.join("Cargo.toml").is_file();
    match (inputs.get("build").unwrap_or_default(), inputs.get("path")) {
        ("auto" | "none", Some(path)) => return Ok(WasmSource::Path(path.to_owned())),
        ("auto", None) if has_manifest => {}
        ("cargo", None) => {}
        ("auto" | "none", None) => {
            return Err(Error::input(
                "path",
                format!(
                    "is required: give the .wasm file or a glob such as `target/wasm32-wasip1/release/*.wasm`, or run in a directory with a Cargo.toml to build (`{}` has none)",
                    working_directory.display()
                ),
            ));
        }
        ("cargo", Some(_)) => {
            return Err(Error::input(
                "path",
                "give either `path` (locate a built .wasm) or `build: cargo`, not both",
            ));
        }
        (other, _) => {
            return Err(Error::input(
                "build",
                format!("`{other}` is not supported; use `auto`, `cargo` or `none`"),
            ));
        }
    }
    if !has_manifest {
        return Err(Error::input(
            "working-directory",
            format!(
                "`{}` has no Cargo.toml to build; set `working-directory` to the crate or workspace",
                working_directory.display()
            ),
        ));
    }
    let target = inputs.get("target").unwrap_or_default();
    if !target.starts_with("wasm32") && !target.starts_with("wasm64") {
        return Err(Error::input(
            "target",
            format!(
                "`{target}` is not a WebAssembly target; use `wasm32-wasip1` (module), `wasm32-wasip2` (component) or `wasm32-unknown-unknown`"
            ),
        ));
    }
    let cargo_args = match inputs.get("cargo-args") {
        Some(args) => shlex::split(args)
            .ok_or_else(|| Error::input("cargo-args", format!("`{args}` has an unclosed quote")))?,
        None => Vec::new(),
    };
    Ok(WasmSource::Build(BuildSpec {
        working_directory: working_directory.to_owned(),
        package: inputs.get("package").map(str::to_owned),
        target: target.to_owned(),
        profile: inputs.get("profile").unwrap_or_default().to_owned(),
        features: inputs
            .list("features")
            .into_iter()
            .flat_map(|f| f.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect(),
        cargo_args,
    }))
}

/// The inputs that say how to reach a registry (`username`, `password`, `github-token`,
/// `insecure`, `ca-file`), shared by every command. The environment (docker config, retry
/// bounds) joins when the command runs.
pub(crate) fn connection(inputs: &Inputs, destination: &Destination) -> Result<Connection> {
    let github_token = inputs.get("github-token").map(Secret::new);
    let to_ghcr = matches!(destination, Destination::Registry(i) if i.registry() == "ghcr.io");
    let mut username = None;
    let credentials = match (inputs.get("username"), inputs.get("password")) {
        (Some(user), Some(password)) => Some((user.to_owned(), Secret::new(password))),
        (None, None) => None,
        (Some(user), None) if to_ghcr && github_token.is_some() => {
            username = Some(user.to_owned());
            None
        }
        (Some(_), None) => {
            return Err(Error::input(
                "password",
                "is required when `username` is given",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::input(
                "username",
                "is required when `password` is given",
            ));
        }
    };
    // Relative to `working-directory`, as `path`, `signing-key` and `public-key` are.
    let working_directory = PathBuf::from(inputs.get("working-directory").unwrap_or("."));
    let ca_file = inputs.get("ca-file").map(|ca| working_directory.join(ca));
    if let Some(ca) = &ca_file
        && !ca.is_file()
    {
        return Err(Error::input(
            "ca-file",
            format!("no file at `{}`", ca.display()),
        ));
    }
    Ok(Connection {
        insecure: inputs.flag("insecure")?,
        ca_file,
        credentials,
        username,
        github_token,
        env: Env::new(),
    })
}

/// `key=value` lines (or comma-separated pairs on one line).
pub(crate) fn parse_annotations(value: Option<&str>) -> Result<BTreeMap<String, String>> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
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
    let mut out = BTreeMap::new();
    for item in items {
        let Some((key, val)) = item.split_once('=') else {
            return Err(Error::input(
                "annotations",
                format!("`{item}` is not `key=value`"),
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::input(
                "annotations",
                format!("`{item}` has an empty key"),
            ));
        }
        out.insert(key.to_owned(), val.trim().to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action_env(pairs: &[(&str, &str)]) -> Env {
        let mut env: Env = INPUT_NAMES
            .iter()
            .map(|n| (format!("INPUT_{}", n.to_uppercase()), String::new()))
            .collect();
        for (k, v) in pairs {
            env.insert(k.to_string(), v.to_string());
        }
        env
    }

    #[test]
    fn key_and_ca_paths_are_relative_to_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let key = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg4izgFDxJpZmkMy4y
lmaWM1ibdyQH3aPhQ9AxU71ZiLehRANCAATQ/7Hh7Gnvahx9Ib/wHBSPihGzHiZL
FnPQ621zKdM6N2kC7ZnJeMA1DqnNRoUYshQQ/tiZYACvaCjBKw1yuKXL
-----END PRIVATE KEY-----";
        std::fs::write(dir.path().join("signing.pem"), key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), "a CA").unwrap();
        let read = read_signing_key("signing.pem", dir.path()).unwrap();
        assert_eq!(read.expose(), key);
        assert!(
            read_signing_key("signing.pem", std::path::Path::new(".")).is_err(),
            "not looked up in the process's directory"
        );

        let destination = Destination::parse("localhost:5000/app").unwrap();
        let workdir = dir.path().to_str().unwrap();
        let env = action_env(&[
            ("INPUT_WORKING-DIRECTORY", workdir),
            ("INPUT_CA-FILE", "ca.pem"),
        ]);
        let found = connection(&Inputs::from_action_env(&env), &destination).unwrap();
        assert_eq!(found.ca_file, Some(dir.path().join("ca.pem")));
        let env = action_env(&[("INPUT_CA-FILE", "ca.pem")]);
        assert!(connection(&Inputs::from_action_env(&env), &destination).is_err());
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
        assert_eq!(inputs.get("working-directory"), Some("."));
        assert_eq!(inputs.get("package"), None, "empty means not given");
        assert_eq!(
            inputs.get("format"),
            Some("cncf"),
            "not given reads as the default"
        );
        let req = PushRequest::from_inputs(&inputs).unwrap();
        assert_eq!(
            req.tags.iter().map(Tag::to_string).collect::<Vec<_>>(),
            ["v1", "v2", "latest"]
        );
        assert!(req.insecure);
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
        assert_eq!(inputs.get("github-token"), Some("ghs_fromEnv"));
        assert_eq!(inputs.secrets(), ["ghs_fromEnv"], "masked as the input is");
        let req = PushRequest::from_inputs(&inputs).unwrap();
        assert_eq!(req.github_token.unwrap().expose(), "ghs_fromEnv");

        // The input, when given, wins.
        env.insert("INPUT_GITHUB-TOKEN".into(), "ghs_input".into());
        assert!(!Inputs::github_token_from_env(&env));
        let inputs = Inputs::from_action_env(&env);
        assert_eq!(inputs.get("github-token"), Some("ghs_input"));
    }

    #[test]
    fn errors_name_the_input() {
        let err = |pairs: &[(&str, &str)]| {
            let mut all = vec![
                ("INPUT_IMAGE", "localhost:5000/app"),
                ("INPUT_PATH", "a.wasm"),
            ];
            all.extend_from_slice(pairs);
            PushRequest::from_inputs(&Inputs::from_action_env(&action_env(&all)))
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
        assert!(
            err(&[("INPUT_SIGSTORE-TRUST-CONFIG", "missing.json")])
                .starts_with("input `sigstore-trust-config`: cannot read `missing.json`")
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
        let req = PushRequest::from_inputs(&Inputs::from_action_env(&env)).unwrap();
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
    fn an_omitted_input_reads_as_its_default() {
        let inputs = Inputs::from_action_env(&action_env(&[("INPUT_TARGET", "wasm32-wasip2")]));
        assert_eq!(inputs.get("command"), Some("push"));
        assert_eq!(inputs.get("profile"), Some(DEFAULT_PROFILE));
        assert_eq!(inputs.get("target"), Some("wasm32-wasip2"), "given wins");
        assert_eq!(inputs.get("path"), None, "no default");
        assert_eq!(default_for("provenance"), Some("true"));
        assert!(inputs.flag("provenance").unwrap());
        assert!(!inputs.flag("dry-run").unwrap());
        assert!(!inputs.flag("no-such-input").unwrap());
    }

    #[test]
    fn annotations_lines_or_pairs() {
        let a = parse_annotations(Some("a=1\nb = x, y\n")).unwrap();
        assert_eq!(a["b"], "x, y");
        let b = parse_annotations(Some("a=1,b=2")).unwrap();
        assert_eq!(b.len(), 2);
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
        let req = PushRequest::from_inputs(&inputs).unwrap();
        assert!(!format!("{req:?}").contains("s3cr3t-value"));
    }
}
