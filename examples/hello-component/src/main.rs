//! A WASI 0.2 command component: `cargo build --target wasm32-wasip2` makes a component that
//! exports `wasi:cli/run`, with nothing beyond std.

fn main() {
    println!("hello from a Wasm component");
}
