//! The request parsing several commands share: [`ReadRequest`] (what pull, verify and inspect
//! read, and from where), the inputs that say how to reach a registry, and `allowed-imports`.
//! Each use case's own request is beside it (`push::request`, `pull`, `verify`).

use std::path::PathBuf;

use crate::context::Env;
use crate::error::{Error, Result};
use crate::input;
use crate::inputs::Inputs;
use crate::reference::{Destination, ImageRef};
use crate::registry::auth::Given;
use crate::registry::remote::{self, Connection};
use crate::registry::retry::Policy;
use crate::secret::Secret;
use crate::wasm::policy::AllowedImports;

/// The reference and connection inputs every read command takes.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// What to read.
    pub image: ImageRef,
    /// How to reach the registry.
    pub connection: Connection,
    /// The directory relative paths are resolved in.
    pub working_directory: PathBuf,
    /// Which layer to take when several could be the Wasm file: its title or digest.
    pub layer: Option<String>,
}

impl ReadRequest {
    /// Parses `image`, `layer`, `working-directory`, the connection inputs and the settings
    /// of `env`.
    pub fn from_inputs(inputs: &Inputs, env: &Env) -> Result<Self> {
        let image = inputs
            .get(input::IMAGE)
            .ok_or_else(|| {
                Error::input(
                    input::IMAGE,
                    "is required: give `registry/repository@sha256:...` (or `:tag`), or `oci:DIR:TAG`",
                )
            })?
            .parse::<ImageRef>()
            .map_err(|e| Error::input(input::IMAGE, e))?;
        let working_directory =
            PathBuf::from(inputs.get(input::WORKING_DIRECTORY).unwrap_or_default());
        if let Destination::Layout(dir) = &image.location {
            crate::files::check_layout_dir(input::IMAGE, dir, inputs.confinement.as_ref())?;
        }
        let connection = connection(inputs, &image.location, env)?;
        Ok(ReadRequest {
            image,
            connection,
            working_directory,
            layer: inputs.get(input::LAYER).map(str::to_owned),
        })
    }
}

/// The inputs that say how to reach a registry (`username`, `password`, `github-token`,
/// `insecure`, `ca-file`), shared by every command, and the `WASM_OCI_*` settings of `env`:
/// all parsed here, before any work starts.
pub fn connection(inputs: &Inputs, destination: &Destination, env: &Env) -> Result<Connection> {
    let registry = match destination {
        Destination::Registry(image) => image.registry(),
        Destination::Layout(_) => "",
    };
    let given = Given::new(
        inputs.get(input::USERNAME).map(str::to_owned),
        inputs.get(input::PASSWORD).map(Secret::new),
        inputs.get(input::GITHUB_TOKEN).map(Secret::new),
        registry,
    )?;
    // Relative to `working-directory`, as `path`, `signing-key` and `public-key` are.
    let working_directory = PathBuf::from(inputs.get(input::WORKING_DIRECTORY).unwrap_or_default());
    let ca_file = inputs
        .get(input::CA_FILE)
        .map(|ca| working_directory.join(ca));
    if let Some(ca) = &ca_file
        && !ca.is_file()
    {
        return Err(Error::input(
            input::CA_FILE,
            format!("no file at `{}`", ca.display()),
        ));
    }
    let ca_certificates = match &ca_file {
        Some(ca) => remote::ca_certificates(ca)?,
        None => Vec::new(),
    };
    Ok(Connection {
        insecure: inputs.flag(input::INSECURE)?,
        ca_file,
        ca_certificates,
        given,
        policy: Policy::from_env(env)?,
        env: env.clone(),
    })
}

/// The `allowed-imports` input, for push and verify.
pub fn allowed_imports(inputs: &Inputs) -> Result<Option<AllowedImports>> {
    inputs
        .get(input::ALLOWED_IMPORTS)
        .map(|value| {
            AllowedImports::parse(value).map_err(|e| Error::input(input::ALLOWED_IMPORTS, e))
        })
        .transpose()
}
