//! The integration tests, one binary: each module is a file of tests, `common` their harness.
//! `cargo test --test it push::` runs the tests of `push.rs`.

mod backoff;
mod bad_inputs;
mod build;
mod common;
mod concurrency;
mod container;
mod contract;
mod credentials;
mod default_image;
mod dsse;
mod faults;
mod first_run;
mod github_api;
mod hostile_output;
mod hostile_transport;
mod in_process;
mod layout;
mod multi_registry;
mod package;
mod provenance;
mod pull;
mod push;
mod readme;
mod redaction;
mod reproducible;
mod sbom;
mod signing;
mod snapshots;
mod tls;
mod transport;
mod verify;
mod verify_keyless;
mod verify_sigstore;
mod wasm_metadata;
mod workflows;
