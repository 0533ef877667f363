//! Encoder-decoder Transformer inference on the GPU through wgpu: WGSL kernels, a generic
//! graph driven by Hugging Face configs, and streaming generation.

pub mod error;
pub mod gpu;
pub mod ops;

pub use error::{Error, Result};
pub mod model;
