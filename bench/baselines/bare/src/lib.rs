//! The physical floor for Rust on Workers: one wasm-bindgen export, no framework.

use wasm_bindgen::prelude::wasm_bindgen;

/// The body of the hello response.
#[wasm_bindgen]
pub fn hello() -> String {
    "Hello from edgeway!".to_owned()
}
