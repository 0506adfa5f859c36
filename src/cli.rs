//! The CLI front door: clap flags, each bound to a `WASM_OCI_<INPUT>` env var named after the
//! action input it mirrors, collected into the same [`Inputs`] the action reads. Also takes
//! wasm-to-oci's positional form, `wasm-oci push FILE REGISTRY/REPO:TAG`.

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::input::{self, Input};
use crate::inputs::Inputs;

/// Build, validate and push WebAssembly to OCI registries, with provenance.
#[derive(Debug, Parser)]
#[command(name = "wasm-oci", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as a GitHub Action: read INPUT_* and GITHUB_* variables, write GITHUB_OUTPUT.
    Action,
    /// Validate a .wasm file and push it as a Wasm OCI artifact; prints the manifest digest.
    Push(Box<PushArgs>),
    /// Pull the Wasm file of an artifact, checked against its digest; prints the path written.
    Pull(PullArgs),
    /// Verify an artifact (digests, Wasm, annotations, provenance); prints the digest verified.
    Verify(VerifyArgs),
    /// Describe an artifact as one JSON document on stdout.
    Inspect(InspectArgs),
}

/// How to reach and authenticate to a registry: every command takes these.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Registry user name.
    #[arg(long, env = "WASM_OCI_USERNAME")]
    pub username: Option<String>,

    /// Registry password or token (prefer the env var to the flag).
    #[arg(long, env = "WASM_OCI_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// GitHub token: reads repository metadata through the GitHub API when pushing, and is
    /// ghcr.io's credential when no other is found (with GITHUB_ACTOR as the user).
    #[arg(long, env = "WASM_OCI_GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,

    /// Allow plain HTTP to the registry.
    #[arg(long, env = "WASM_OCI_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    pub insecure: Option<String>,

    /// PEM file of extra CA certificates to trust.
    #[arg(long, env = "WASM_OCI_CA_FILE")]
    pub ca_file: Option<String>,
}

impl ConnectionArgs {
    fn set_inputs(self, inputs: &mut Inputs) {
        for (name, value) in [
            (input::USERNAME, self.username),
            (input::PASSWORD, self.password),
            (input::GITHUB_TOKEN, self.github_token),
            (input::INSECURE, self.insecure),
            (input::CA_FILE, self.ca_file),
        ] {
            if let Some(v) = value {
                inputs.set(name, &v);
            }
        }
    }
}

/// How to reach the registry, for the commands that read.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Credentials and TLS.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Which layer is the Wasm file when several could be: its title or digest.
    #[arg(long, env = "WASM_OCI_LAYER")]
    pub layer: Option<String>,
}

impl RegistryArgs {
    fn into_inputs(self, reference: Option<String>, image: Option<String>) -> Result<Inputs> {
        let mut inputs = Inputs::default();
        if reference.is_some() && image.is_some() {
            return Err(Error::input(
                input::IMAGE,
                "give the reference either as REFERENCE or as --image, not both",
            ));
        }
        for (name, value) in [
            (input::IMAGE, reference.or(image)),
            (input::LAYER, self.layer),
        ] {
            if let Some(v) = value {
                inputs.set(name, &v);
            }
        }
        self.connection.set_inputs(&mut inputs);
        Ok(inputs)
    }
}

/// `wasm-oci pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// What to pull: REGISTRY/REPO:TAG, REGISTRY/REPO@sha256:..., or oci:DIR:TAG.
    #[arg(value_name = "REFERENCE")]
    pub reference: Option<String>,

    /// Same as REFERENCE.
    #[arg(long, env = "WASM_OCI_IMAGE")]
    pub image: Option<String>,

    /// Where to write the .wasm: a file, or a directory [default: ./<layer title>].
    #[arg(short = 'o', long, env = "WASM_OCI_OUTPUT")]
    pub output: Option<String>,

    /// Registry and layer flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl PullArgs {
    /// The flags as action inputs.
    pub fn into_inputs(self) -> Result<Inputs> {
        let mut inputs = self.registry.into_inputs(self.reference, self.image)?;
        if let Some(output) = self.output {
            inputs.set(input::OUTPUT, &output);
        }
        Ok(inputs)
    }
}

/// `wasm-oci verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// What to verify: REGISTRY/REPO@sha256:... (a tag is resolved, with a warning).
    #[arg(value_name = "REFERENCE")]
    pub reference: Option<String>,

    /// Same as REFERENCE.
    #[arg(long, env = "WASM_OCI_IMAGE")]
    pub image: Option<String>,

    /// The repository URL the artifact and its provenance must come from.
    #[arg(long, env = "WASM_OCI_EXPECT_SOURCE")]
    pub expect_source: Option<String>,

    /// The commit the artifact and its provenance must come from.
    #[arg(long, env = "WASM_OCI_EXPECT_REVISION")]
    pub expect_revision: Option<String>,

    /// Annotations that must hold, `key=value`; repeatable.
    #[arg(
        long = "annotations",
        alias = "annotation",
        env = "WASM_OCI_ANNOTATIONS"
    )]
    pub annotations: Vec<String>,

    /// PEM public key (text or file) the provenance must be signed with.
    #[arg(long, env = "WASM_OCI_PUBLIC_KEY", allow_hyphen_values = true)]
    pub public_key: Option<String>,

    /// Require a provenance signature that verifies, from the identity or key named
    /// [default: true]; `false` accepts unsigned provenance.
    #[arg(long, env = "WASM_OCI_REQUIRE_SIGNATURE", num_args = 0..=1, default_missing_value = "true")]
    pub require_signature: Option<String>,

    /// Require a CycloneDX SBOM referrer of the artifact [default: false].
    #[arg(long, env = "WASM_OCI_REQUIRE_SBOM", num_args = 0..=1, default_missing_value = "true")]
    pub require_sbom: Option<String>,

    /// The SAN a keyless Sigstore bundle's certificate must have, exactly (default: a workflow of
    /// the expected source).
    #[arg(long, env = "WASM_OCI_CERTIFICATE_IDENTITY")]
    pub certificate_identity: Option<String>,

    /// A regular expression the certificate's SAN must match.
    #[arg(long, env = "WASM_OCI_CERTIFICATE_IDENTITY_REGEXP")]
    pub certificate_identity_regexp: Option<String>,

    /// The OIDC issuer the certificate must name (default: GitHub Actions').
    #[arg(long, env = "WASM_OCI_CERTIFICATE_OIDC_ISSUER")]
    pub certificate_oidc_issuer: Option<String>,

    /// The interfaces the component may import, such as `wasi:cli/*`; one per line or
    /// comma-separated.
    #[arg(long, env = "WASM_OCI_ALLOWED_IMPORTS")]
    pub allowed_imports: Option<String>,

    /// A trusted root or client trust config file to check Sigstore bundles against, instead of
    /// the public-good and GitHub roots.
    #[arg(long, env = "WASM_OCI_SIGSTORE_TRUST_CONFIG")]
    pub sigstore_trust_config: Option<String>,

    /// Registry and layer flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl VerifyArgs {
    /// The flags as action inputs.
    pub fn into_inputs(self) -> Result<Inputs> {
        let mut inputs = self.registry.into_inputs(self.reference, self.image)?;
        for (name, value) in [
            (input::EXPECT_SOURCE, self.expect_source),
            (input::EXPECT_REVISION, self.expect_revision),
            (input::PUBLIC_KEY, self.public_key),
            (input::REQUIRE_SBOM, self.require_sbom),
            (input::REQUIRE_SIGNATURE, self.require_signature),
            (input::CERTIFICATE_IDENTITY, self.certificate_identity),
            (
                input::CERTIFICATE_IDENTITY_REGEXP,
                self.certificate_identity_regexp,
            ),
            (input::CERTIFICATE_OIDC_ISSUER, self.certificate_oidc_issuer),
            (input::SIGSTORE_TRUST_CONFIG, self.sigstore_trust_config),
            (input::ALLOWED_IMPORTS, self.allowed_imports),
            (
                input::ANNOTATIONS,
                (!self.annotations.is_empty()).then(|| self.annotations.join("\n")),
            ),
        ] {
            if let Some(v) = value {
                inputs.set(name, &v);
            }
        }
        Ok(inputs)
    }
}

/// `wasm-oci inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// What to describe: REGISTRY/REPO:TAG, REGISTRY/REPO@sha256:..., or oci:DIR:TAG.
    #[arg(value_name = "REFERENCE")]
    pub reference: Option<String>,

    /// Same as REFERENCE.
    #[arg(long, env = "WASM_OCI_IMAGE")]
    pub image: Option<String>,

    /// Registry and layer flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl InspectArgs {
    /// The flags as action inputs.
    pub fn into_inputs(self) -> Result<Inputs> {
        self.registry.into_inputs(self.reference, self.image)
    }
}

/// `wasm-oci push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The .wasm file (wasm-to-oci form; same as --path).
    #[arg(value_name = "FILE")]
    pub file: Option<String>,

    /// Where to push, with an optional tag: REGISTRY/REPO[:TAG] (wasm-to-oci form).
    #[arg(value_name = "REFERENCE")]
    pub reference: Option<String>,

    /// Registry and repository (`ghcr.io/org/app`), or `oci:DIR` for a local OCI layout.
    #[arg(long, env = "WASM_OCI_IMAGE")]
    pub image: Option<String>,

    /// Tags, comma- or newline-separated [default: derived from the git ref, else `latest`].
    #[arg(long, env = "WASM_OCI_TAGS")]
    pub tags: Option<String>,

    /// The .wasm file, or a glob that must match exactly one file.
    #[arg(long, env = "WASM_OCI_PATH")]
    pub path: Option<String>,

    /// `auto` (build with cargo when no path is given and a Cargo.toml is here), `cargo` or `none`.
    #[arg(long, env = "WASM_OCI_BUILD")]
    pub build: Option<String>,

    /// Directory that `path` is relative to, and where cargo builds.
    #[arg(long, env = "WASM_OCI_WORKING_DIRECTORY")]
    pub working_directory: Option<String>,

    /// Build mode: the workspace member to build.
    #[arg(long, env = "WASM_OCI_PACKAGE")]
    pub package: Option<String>,

    /// Build mode: the target [default: wasm32-wasip1; wasm32-wasip2 makes a component].
    #[arg(long, env = "WASM_OCI_TARGET")]
    pub target: Option<String>,

    /// Build mode: the cargo profile [default: release].
    #[arg(long, env = "WASM_OCI_PROFILE")]
    pub profile: Option<String>,

    /// Build mode: features to enable, comma- or space-separated.
    #[arg(long, env = "WASM_OCI_FEATURES")]
    pub features: Option<String>,

    /// Build mode: more arguments for `cargo build`, split like a shell would.
    #[arg(long, env = "WASM_OCI_CARGO_ARGS", allow_hyphen_values = true)]
    pub cargo_args: Option<String>,

    /// `cncf` (default), `wasm-to-oci` (legacy media types) or `image` (an OCI container image
    /// of the module, for containerd before 1.6.25 and 1.7.7).
    #[arg(long, env = "WASM_OCI_FORMAT")]
    pub format: Option<String>,

    /// Manifest annotations, `key=value`, one per line or comma-separated; repeatable.
    #[arg(
        long = "annotations",
        alias = "annotation",
        env = "WASM_OCI_ANNOTATIONS"
    )]
    pub annotations: Vec<String>,

    /// Credentials and TLS.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Write to a local OCI layout instead of the registry.
    #[arg(long, env = "WASM_OCI_DRY_RUN", num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,

    /// The OCI layout directory a dry run writes [default: wasm-oci-dry-run].
    #[arg(long, env = "WASM_OCI_DRY_RUN_LAYOUT")]
    pub dry_run_layout: Option<String>,

    /// Attach an SLSA v1 provenance statement as an OCI referrer [default: true].
    #[arg(long, env = "WASM_OCI_PROVENANCE", num_args = 0..=1, default_missing_value = "true")]
    pub provenance: Option<String>,

    /// Build mode: attach a CycloneDX SBOM of the crates linked into the .wasm as an OCI
    /// referrer [default: true].
    #[arg(long, env = "WASM_OCI_SBOM", num_args = 0..=1, default_missing_value = "true")]
    pub sbom: Option<String>,

    /// PEM private key (ECDSA P-256 or Ed25519), or a path to one: signs the provenance.
    #[arg(long, env = "WASM_OCI_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,

    /// Keyless Sigstore signing of the provenance: `auto` (when the job can mint a GitHub Actions
    /// OIDC token), `true` (required), `false` [default: auto].
    #[arg(long, env = "WASM_OCI_SIGN")]
    pub sign: Option<String>,

    /// Sigstore client trust config or signing config (a path or the JSON): the instance that
    /// signs, instead of the one the repository's visibility picks.
    #[arg(long, env = "WASM_OCI_SIGSTORE_TRUST_CONFIG")]
    pub sigstore_trust_config: Option<String>,

    /// The interfaces the component may import, such as `wasi:cli/*`; one per line or
    /// comma-separated. Checked before anything is sent.
    #[arg(long, env = "WASM_OCI_ALLOWED_IMPORTS")]
    pub allowed_imports: Option<String>,
}

impl PushArgs {
    /// The flags as action inputs.
    pub fn into_inputs(self) -> Result<Inputs> {
        let mut inputs = Inputs::default();
        let mut set = |name: Input, value: Option<String>| {
            if let Some(v) = value {
                inputs.set(name, &v);
            }
        };
        set(input::IMAGE, self.image);
        set(input::TAGS, self.tags);
        set(input::PATH, self.path);
        set(input::BUILD, self.build);
        set(input::WORKING_DIRECTORY, self.working_directory);
        set(input::PACKAGE, self.package);
        set(input::TARGET, self.target);
        set(input::PROFILE, self.profile);
        set(input::FEATURES, self.features);
        set(input::CARGO_ARGS, self.cargo_args);
        set(input::FORMAT, self.format);
        set(
            input::ANNOTATIONS,
            (!self.annotations.is_empty()).then(|| self.annotations.join("\n")),
        );
        set(input::DRY_RUN, self.dry_run);
        set(input::DRY_RUN_LAYOUT, self.dry_run_layout);
        set(input::PROVENANCE, self.provenance);
        set(input::SBOM, self.sbom);
        set(input::SIGNING_KEY, self.signing_key);
        set(input::SIGN, self.sign);
        set(input::SIGSTORE_TRUST_CONFIG, self.sigstore_trust_config);
        set(input::ALLOWED_IMPORTS, self.allowed_imports);
        self.connection.set_inputs(&mut inputs);
        if let Some(file) = self.file {
            if inputs.get(input::PATH).is_some() {
                return Err(Error::input(
                    input::PATH,
                    "give the file either as FILE or as --path, not both",
                ));
            }
            inputs.set(input::PATH, &file);
        }
        if let Some(reference) = self.reference {
            if inputs.get(input::IMAGE).is_some() {
                return Err(Error::input(
                    input::IMAGE,
                    "give the destination either as REFERENCE or as --image, not both",
                ));
            }
            let (image, tag) = split_tag(&reference);
            inputs.set(input::IMAGE, image);
            if let Some(tag) = tag {
                if inputs.get(input::TAGS).is_some() {
                    return Err(Error::input(
                        input::TAGS,
                        "give the tag either in REFERENCE or in --tags, not both",
                    ));
                }
                inputs.set(input::TAGS, tag);
            }
        }
        Ok(inputs)
    }
}

/// Splits `registry/repo:tag` into the image and the tag; a `:` in the registry's port is kept.
fn split_tag(reference: &str) -> (&str, Option<&str>) {
    if let Some(rest) = reference.strip_prefix("oci:") {
        // skopeo's form, `oci:DIR:TAG`.
        return match rest.rsplit_once(':') {
            Some((dir, tag)) => (&reference[..4 + dir.len()], Some(tag)),
            None => (reference, None),
        };
    }
    let last_slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            Some(&reference[last_slash + i + 1..]),
        ),
        None => (reference, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_to_oci_form() {
        assert_eq!(
            split_tag("localhost:5000/app:v1"),
            ("localhost:5000/app", Some("v1"))
        );
        assert_eq!(
            split_tag("localhost:5000/app"),
            ("localhost:5000/app", None)
        );
        assert_eq!(split_tag("oci:out"), ("oci:out", None));
        assert_eq!(split_tag("oci:out:1.0"), ("oci:out", Some("1.0")));
        let cli =
            Cli::try_parse_from(["wasm-oci", "push", "m.wasm", "localhost:5000/app:v1"]).unwrap();
        let Command::Push(args) = cli.command else {
            panic!()
        };
        let inputs = args.into_inputs().unwrap();
        assert_eq!(inputs.get(input::PATH), Some("m.wasm"));
        assert_eq!(inputs.get(input::IMAGE), Some("localhost:5000/app"));
        assert_eq!(inputs.get(input::TAGS), Some("v1"));
    }

    #[test]
    fn wasm_to_oci_pull_form() {
        let cli =
            Cli::try_parse_from(["wasm-oci", "pull", "localhost:5000/app:v1", "-o", "x.wasm"])
                .unwrap();
        let Command::Pull(args) = cli.command else {
            panic!()
        };
        let inputs = args.into_inputs().unwrap();
        assert_eq!(inputs.get(input::IMAGE), Some("localhost:5000/app:v1"));
        assert_eq!(inputs.get(input::OUTPUT), Some("x.wasm"));
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
