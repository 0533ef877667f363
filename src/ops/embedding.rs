//! Token embedding lookup.

use crate::error::{Error, Result};
use crate::gpu::shaders::EMBEDDING;
use crate::gpu::{Recorder, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct EmbeddingParams {
    rows: u32,
    dim: u32,
    vocab: u32,
    scale: f32,
}

/// out[r, :] = table[ids[r], :] * scale; `ids` holds u32 token ids.
pub fn embedding(
    rec: &mut Recorder,
    ids: &Tensor,
    table: &Tensor,
    out: &Tensor,
    scale: f32,
) -> Result<()> {
    let [vocab, dim] = table.shape[..] else {
        return Err(Error::invalid(format!(
            "embedding: table must be 2-D, got {:?}",
            table.shape
        )));
    };
    let rows = ids.len();
    if out.len() != rows * dim || vocab == 0 {
        return Err(Error::invalid(format!(
            "embedding: {rows} ids into a {vocab}x{dim} table cannot fill output {:?}",
            out.shape
        )));
    }
    let params = EmbeddingParams {
        rows: rows as u32,
        dim: dim as u32,
        vocab: vocab as u32,
        scale,
    };
    rec.dispatch(
        &EMBEDDING,
        &params,
        &[&ids.buffer, &table.buffer, &out.buffer],
        [rows as u32, 1, 1],
    )
}
