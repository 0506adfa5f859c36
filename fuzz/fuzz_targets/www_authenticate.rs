//! A registry's `WWW-Authenticate` header: any header parses to parameters or to nothing,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_oci::registry::remote::parse_bearer_challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(params) = parse_bearer_challenge(text) {
        assert!(params.iter().any(|(k, _)| k == "realm"));
    }
});
