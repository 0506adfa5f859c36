//! Docker's `config.json`, as `docker login` and hand editing leave it: any file gives a
//! credential, nothing, or one error, never a panic. No `PATH` is given, so no credential
//! helper runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_oci::context::Env;
use wasm_oci::registry::auth::{Given, resolve};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("config.json"), data).expect("the config is written");
    let mut env = Env::new();
    env.insert(
        "DOCKER_CONFIG".to_owned(),
        dir.path().to_string_lossy().into_owned(),
    );
    for registry in ["ghcr.io", "docker.io", "localhost:5000"] {
        let _ = resolve(registry, &Given::default(), &env);
    }
});
