//! LEB128, the variable-length integers of the Wasm binary format, for tests that write a
//! module byte by byte (sizes of sections and segments). The one copy: the integration tests
//! reach it as `common::leb`, and the unit tests of `src/wasm.rs` include this file by path.

/// `n` as unsigned LEB128.
pub(crate) fn leb(mut n: usize) -> Vec<u8> {
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
