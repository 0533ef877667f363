//! Encoder-decoder Transformer inference on the GPU through wgpu: WGSL kernels, a generic
//! graph driven by Hugging Face configs, and streaming generation.
//!
//! Layers, each using only those below it: `formats` (bytes into descriptions and tensors,
//! from any `FileSource`), `gpu` (device, kernels, buffers, plans), `ops` (typed kernels),
//! `model` (description, weight loader, graph), `generate` (decoding, processors, options),
//! then `engine` (what callers hold) and, in the browser, `web`.

pub mod engine;
pub mod error;
pub mod formats;
pub mod generate;
pub mod gpu;
mod load;
pub mod model;
pub mod ops;
mod platform;
pub mod tokenizer;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use engine::{Engine, LoadOptions};
pub use error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
pub use formats::DirSource;
pub use formats::{FileSource, MemorySource};
pub use generate::{Generated, Generation, GenerationOptions};
