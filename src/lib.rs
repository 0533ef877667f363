//! Encoder-decoder Transformer inference on the GPU through wgpu: WGSL kernels, a generic
//! graph driven by Hugging Face configs, and streaming generation.

pub mod engine;
pub mod error;
pub mod files;
pub mod generate;
pub mod gpu;
pub mod model;
pub mod ops;
pub mod tokenizer;

pub use engine::Engine;
pub use error::{Error, Result};
pub use files::ModelFiles;
pub use generate::{Generated, Generation, GenerationOptions};
#[cfg(target_arch = "wasm32")]
pub mod web;
