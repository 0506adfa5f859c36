//! Wasm validation, header first: any bytes, in chunks of any size, are judged as wasmparser
//! judges the whole binary.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    // The first byte sets the size of the chunks the rest arrives in.
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    common::agrees_with_wasmparser(bytes, usize::from(chunk) * 97 + 1);
});
