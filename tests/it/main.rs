//! The integration tests, one binary: each module is a file of tests, `common` their harness.
//! `cargo test --test it push::` runs the tests of `push.rs`.

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
mod layout;
mod package;
mod provenance;
mod pull;
mod push;
mod readme;
mod reproducible;
mod round_trips;
mod signing;
mod snapshots;
mod tls;
mod verify;
mod verify_keyless;
mod verify_sigstore;
mod workflows;
