//! The core's one error type. Every message is short, lowercase and names the object it is about;
//! foreign errors are mapped in exactly one place each (`registry::remote::map_oci_error`, `wasm`).

use std::path::PathBuf;

/// Everything that can stop a push, a pull or a check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input or flag has a value we cannot use.
    #[error("input `{name}`: {reason}")]
    Input {
        /// The input's name as in action.yml.
        name: &'static str,
        /// What is wrong and what to give instead.
        reason: String,
    },

    /// Locate mode found no file or more than one.
    #[error("{0}")]
    Locate(String),

    /// Cargo could not build the module, or built none or several.
    #[error("{0}")]
    Build(String),

    /// The toolchain lacks the standard library of the Wasm target to build for.
    #[error("the Rust target `{0}` is not installed; run `rustup target add {0}`")]
    TargetMissing(String),

    /// A file could not be read or written.
    #[error("cannot {action} `{path}`")]
    Io {
        /// What we were doing ("read", "write", "create").
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// The file is not a valid WebAssembly module or component.
    #[error("`{path}` is not valid WebAssembly: {reason}")]
    InvalidWasm {
        /// The file concerned.
        path: PathBuf,
        /// What the validator found, with its byte offset.
        reason: String,
    },

    /// The registry refused the credentials.
    #[error("registry {registry} refused the credentials{} ({status}); check `username` and `password`", user.as_deref().map(|u| format!(" for user `{u}`")).unwrap_or_default())]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The user name that was tried, if any.
        user: Option<String>,
        /// The HTTP status (401 or 403).
        status: u16,
    },

    /// The registry could not be reached at all.
    #[error("cannot reach registry {registry}: {reason}")]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The transport's reason, without secrets.
        reason: String,
    },

    /// The registry answered with an error.
    #[error("registry {registry} refused {operation}: {reason}")]
    Registry {
        /// The registry host.
        registry: String,
        /// What we asked for ("the manifest upload", "blob sha256:...").
        operation: String,
        /// The registry's own error code and message, or the HTTP status.
        reason: String,
    },

    /// A digest the registry (or a file) reported does not match the one computed here.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The digest computed locally.
        expected: String,
        /// The digest that was reported or found.
        actual: String,
    },

    /// The provenance could not be made or attached.
    #[error("provenance: {0}")]
    Provenance(String),

    /// An OCI image layout directory is malformed.
    #[error("OCI layout `{path}`: {reason}")]
    Layout {
        /// The layout directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Result with the core's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An `Io` error for `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// An `Input` error.
    pub fn input(name: &'static str, reason: impl Into<String>) -> Self {
        Error::Input {
            name,
            reason: reason.into(),
        }
    }

    /// A short title for the `::error title=...::` annotation.
    pub fn title(&self) -> &'static str {
        match self {
            Error::Input { .. } => "Invalid input",
            Error::Locate(_) => "Wasm file not found",
            Error::Build(_) => "Build failed",
            Error::TargetMissing(_) => "Rust target missing",
            Error::Io { .. } => "File error",
            Error::InvalidWasm { .. } => "Invalid WebAssembly",
            Error::Unauthorized { .. } => "Registry authentication failed",
            Error::Unreachable { .. } => "Registry unreachable",
            Error::Registry { .. } => "Registry error",
            Error::DigestMismatch { .. } => "Digest mismatch",
            Error::Layout { .. } => "OCI layout error",
            Error::Provenance(_) => "Provenance error",
        }
    }
}
