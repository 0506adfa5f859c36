//! The classic sample module: one exported function, no imports.

/// Multiplies three numbers, wrapping on overflow.
#[unsafe(no_mangle)]
pub extern "C" fn multiply(a: i32, b: i32, c: i32) -> i32 {
    a.wrapping_mul(b).wrapping_mul(c)
}
