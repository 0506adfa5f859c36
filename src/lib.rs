//! wasm-oci: build or locate a WebAssembly module or component, validate it, and push it to an
//! OCI registry as a standard Wasm OCI artifact. The library holds the core; the `wasm-oci`
//! binary is two front doors over it: `wasm-oci action` (the GitHub Action contract) and the CLI.

pub mod action;
pub mod artifact;
pub mod build;
pub mod child;
pub mod cli;
pub mod context;
pub mod error;
pub mod files;
pub mod github;
pub mod input;
pub mod inputs;
pub mod inspect;
pub mod locate;
pub mod markdown;
pub mod mermaid;
pub mod metadata_action;
pub mod owner;
pub mod provenance;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod request;
pub mod resolve;
pub mod secret;
pub mod sigstore;
pub mod targets;
pub mod verify;
pub mod wasm;

pub use error::{Error, Result};

/// The target of `info` events that are notices: `::notice::` in action mode, shown in the
/// job's annotations (`tracing::info!(target: wasm_oci::NOTICE, ...)`); plain info lines in CLI
/// mode.
pub const NOTICE: &str = "wasm_oci::notice";

/// A span that the action front door shows as a collapsible `::group::`: every use case marks
/// its phases with it.
pub fn phase(name: &'static str) -> tracing::Span {
    tracing::info_span!("phase", name)
}
