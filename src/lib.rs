//! Encoder-decoder Transformer inference on the GPU through wgpu: WGSL kernels, a generic
//! graph driven by Hugging Face configs, and streaming generation.
//!
//! The model description (`model::spec`) is plain data every part may use. Around it:
//! `formats` turns bytes into descriptions and tensors and never reaches the GPU; `gpu`
//! (device, kernels, buffers, plans) and `ops` (typed kernels) know nothing of files;
//! `model` loads weights and records the graph; `generate` decodes; `engine` ties them for
//! callers, and `web` (wasm32) hands the engine to JS. `tests/architecture.rs` checks these
//! directions and that no file imports a file that imports it back.

pub mod document;
pub mod engine;
pub mod error;
pub mod formats;
pub mod generate;
pub mod gpu;
mod load;
pub mod model;
pub mod ops;
pub mod platform;
pub mod tokenizer;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use document::{Batching, Finished, ManyGeneration, ManyOptions};
pub use engine::{Engine, LoadOptions};
pub use error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
pub use formats::DirSource;
pub use formats::{FileSource, MemorySource};
pub use generate::{Generated, Generation, GenerationOptions};
