//! Shared by the Wasm targets: our validation of `bytes`, fed in chunks as a download or a
//! push feeds it, must agree with wasmparser's validation of the whole binary.

use std::path::PathBuf;

use wasm_oci::wasm::Validation;
use wasmparser::{Validator, WasmFeatures};

pub fn agrees_with_wasmparser(bytes: &[u8], chunk: usize) {
    let mut validation = Validation::start(PathBuf::from("fuzz.wasm"));
    for piece in bytes.chunks(chunk.max(1)) {
        if !validation.feed(bytes::Bytes::copy_from_slice(piece)) {
            break;
        }
    }
    let ours = validation.finish();
    let theirs = Validator::new_with_features(WasmFeatures::all()).validate_all(bytes);
    assert_eq!(
        ours.is_ok(),
        theirs.is_ok(),
        "ours: {ours:?}, wasmparser: {:?}",
        theirs.as_ref().err()
    );
}
