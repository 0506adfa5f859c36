//! The shadows of large sections: the input is the start of a data section (in a module with
//! one memory) or of a custom section, padded with zeros past the size from which validation
//! passes over its payloads unread. The verdict must be wasmparser's on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

/// Larger than the size from which a section is shadowed (1 MiB).
const PADDED: usize = (1 << 20) + 64;

fn leb(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the section and whether it sits in a component's module.
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let mut payload = body.to_vec();
    payload.resize(PADDED.max(body.len()), 0);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    if choice & 1 == 0 {
        // One memory of one page, then the data section.
        module.extend_from_slice(&[5, 3, 1, 0, 1, 11]);
    } else {
        module.push(0);
    }
    module.extend(leb(payload.len()));
    module.extend(payload);
    let binary = if choice & 2 == 0 {
        module
    } else {
        let mut component = b"\0asm\x0d\0\x01\0".to_vec();
        component.push(1);
        component.extend(leb(module.len()));
        component.extend(module);
        component
    };
    // Chunks of 64 KiB and more, as files and downloads arrive in.
    common::agrees_with_wasmparser(&binary, (usize::from(choice >> 2) + 1) * 65_537);
});
