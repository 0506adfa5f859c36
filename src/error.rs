//! The core's one error type. Every message is short, lowercase and names the object it is about;
//! foreign errors are mapped in exactly one place each (a registry's answers in
//! `registry::remote::errors`, `wasm`).

use std::path::PathBuf;

use crate::input::Input;
use crate::reference::Digest;

/// Everything that can stop a push, a pull or a check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input or flag has a value we cannot use.
    #[error("input `{}`: {reason}", input.name)]
    Input {
        /// The input (or `WASM_OCI_*` setting), its name as in action.yml.
        input: Input,
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

    /// The registry refused the credentials (401) or the access (403).
    #[error("{}", unauthorized_message(registry, user.as_deref(), *status, detail, credential_source, *push))]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The user name that was tried, if any.
        user: Option<String>,
        /// The HTTP status (401 or 403).
        status: u16,
        /// The registry's own error code and message, if it sent one.
        detail: String,
        /// Where the credentials came from ("the `username` and `password` inputs").
        credential_source: String,
        /// Whether the access refused was for pushing (else for pulling).
        push: bool,
    },

    /// The registry could not be reached at all.
    #[error("cannot reach registry {registry}: {reason}")]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The transport's reason, without secrets.
        reason: String,
    },

    /// The registry's certificate could not be checked.
    #[error(
        "cannot verify the TLS certificate of registry {registry}: {reason}; if it is signed by a private CA, give that CA's PEM certificate in `ca-file`"
    )]
    Tls {
        /// The registry host.
        registry: String,
        /// What the TLS library said.
        reason: String,
    },

    /// Credentials could not be read from where they were configured.
    #[error("{source_name}: {reason}")]
    Credentials {
        /// Where they were looked for: a docker config file, a credential helper.
        source_name: String,
        /// What is wrong and what to do.
        reason: String,
    },

    /// A registry operation kept failing with retryable errors until the retry bounds ran out.
    #[error("{last} (gave up after {attempts} attempts in {seconds}s)")]
    GaveUp {
        /// How many attempts were made.
        attempts: u32,
        /// How long they took, in whole seconds.
        seconds: u64,
        /// The last attempt's error.
        last: Box<Error>,
    },

    /// One error that more than one task waited on (the file's hash, which both the upload
    /// and the artifact's description need).
    #[error(transparent)]
    Shared(std::sync::Arc<Error>),

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

    /// An upload was held back from its commit: the file it carried failed validation.
    #[error("the upload of blob {digest} was held back: the file failed validation")]
    HeldBack {
        /// The blob that was not stored.
        digest: Digest,
    },

    /// The file pushed was rewritten while it was read or uploaded.
    #[error("`{path}` changed while it was pushed; nothing was tagged")]
    FileChanged {
        /// The file concerned.
        path: PathBuf,
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

    /// The registry or layout has no manifest under the reference.
    #[error("no manifest `{reference}` found; check the name, the tag or the digest")]
    NotFound {
        /// The reference asked for.
        reference: String,
    },

    /// The artifact is not something we can pull as one Wasm file.
    #[error("artifact {reference}: {reason}")]
    Artifact {
        /// The artifact's reference.
        reference: String,
        /// What is wrong and what to do.
        reason: String,
    },

    /// A download ended before all the bytes arrived.
    #[error("the download of {what} was cut short: {received} of {expected} bytes arrived")]
    Incomplete {
        /// What was downloaded.
        what: String,
        /// The size the descriptor gives.
        expected: u64,
        /// The bytes that arrived.
        received: u64,
    },

    /// A Sigstore service (or the runner's token endpoint) refused or failed keyless signing.
    #[error("keyless signing: {service} at {url}: {reason}")]
    Signing {
        /// Which service: "Fulcio", "Rekor", "the timestamp authority", ...
        service: &'static str,
        /// Its URL.
        url: String,
        /// What it answered, without secrets.
        reason: String,
    },

    /// A push to several registries left some without the artifact.
    #[error("the artifact did not reach {failed}; {held}")]
    NotEverywhere {
        /// Each registry repository that did not get it, with why.
        failed: String,
        /// Which hold it complete, or that none does.
        held: String,
    },

    /// One or more checks of `verify` failed.
    #[error("verification of {reference} failed: {failures}")]
    Verification {
        /// The artifact verified.
        reference: String,
        /// Each failed check, `name: what was found`, joined by `; `.
        failures: String,
    },

    /// A registry reached over HTTPS sends its clients to a plain-HTTP token service.
    #[error(
        "registry {registry} asks for credentials at `{realm}`, in plain HTTP; they were not sent: its token service must be HTTPS (`insecure: true` allows plain HTTP, for a registry reached in plain HTTP)"
    )]
    PlainHttpRealm {
        /// The registry host.
        registry: String,
        /// The token realm its challenge names.
        realm: String,
    },
}

fn unauthorized_message(
    registry: &str,
    user: Option<&str>,
    status: u16,
    detail: &str,
    credential_source: &str,
    push: bool,
) -> String {
    let said = if detail.is_empty() {
        status.to_string()
    } else {
        format!("{status} {detail}")
    };
    let (access, hint) = match (push, registry == "ghcr.io") {
        (true, true) => (
            "push",
            " (ghcr.io needs a token with `write:packages`, or the job's token with `permissions: packages: write`)",
        ),
        (false, true) => (
            "pull",
            " (ghcr.io needs a token with `read:packages`, or the job's token with `permissions: packages: read`)",
        ),
        (true, false) => ("push", ""),
        (false, false) => ("pull", ""),
    };
    let message = match (user, status) {
        (None, _) if credential_source.contains("anonymous") => format!(
            "registry {registry} requires credentials ({said}); give `username` and `password`, or log in with docker"
        ),
        (Some(u), 403) => format!(
            "registry {registry} denied user `{u}` ({said}); the credentials from {credential_source} lack {access} access to the repository"
        ),
        (Some(u), _) => format!(
            "registry {registry} refused the credentials for user `{u}` from {credential_source} ({said}); check them"
        ),
        (None, _) => format!(
            "registry {registry} refused the credentials from {credential_source} ({said}); check them"
        ),
    };
    message + hint
}

/// Result with the core's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error and its causes on one line, as `main` prints them.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

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
    pub fn input(input: Input, reason: impl Into<String>) -> Self {
        Error::Input {
            input,
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
            Error::HeldBack { .. } => "Upload held back",
            Error::FileChanged { .. } => "File changed during the push",
            Error::Tls { .. } => "Registry TLS error",
            Error::Credentials { .. } => "Registry credentials",
            Error::GaveUp { last, .. } => last.title(),
            Error::Shared(e) => e.title(),
            Error::DigestMismatch { .. } => "Digest mismatch",
            Error::Layout { .. } => "OCI layout error",
            Error::Provenance(_) => "Provenance error",
            Error::NotFound { .. } => "Artifact not found",
            Error::Artifact { .. } => "Unsupported artifact",
            Error::Incomplete { .. } => "Download incomplete",
            Error::Verification { .. } => "Verification failed",
            Error::PlainHttpRealm { .. } => "Registry authentication refused",
            Error::Signing { .. } => "Signing failed",
            Error::NotEverywhere { .. } => "Push incomplete",
        }
    }
}
