//! How the weights of linear layers, token embeddings and the LM head are kept on the GPU.

use crate::error::{Error, Result};

/// How the weights of linear layers are kept on the GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightFormat {
    #[default]
    F32,
    /// f16, packed two per u32, read with f32 accumulation: half the memory and bandwidth.
    /// Norms, biases and position tables stay f32; activations never leave f32, so T5's
    /// large feed-forward activations cannot overflow.
    F16,
    /// int8 with one scale per row: a quarter of the memory. Weights a checkpoint stores as
    /// int8 (Marian's intgemm8) are kept exactly; others are quantised per row (absmax).
    /// Both apply to token embeddings and the LM head as to every linear layer.
    Int8,
}

impl WeightFormat {
    pub fn parse(name: &str) -> Result<WeightFormat> {
        match name {
            "f32" => Ok(WeightFormat::F32),
            "f16" => Ok(WeightFormat::F16),
            "int8" => Ok(WeightFormat::Int8),
            other => Err(Error::invalid(format!(
                "unknown weight format \"{other}\" (use f32, f16 or int8)"
            ))),
        }
    }
}
