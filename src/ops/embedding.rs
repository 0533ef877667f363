//! Token embedding lookup, with absolute position embeddings added in the same pass.

use crate::error::{Error, Result};
use crate::gpu::shaders::EMBEDDING;
use crate::gpu::{Recorder, Tensor};

/// Rows of a position table to add: row `offset + r` (plus `step.pos` when `from_step`)
/// goes to output row `r`.
#[derive(Clone, Copy, Debug)]
pub struct Positions<'a> {
    pub table: &'a Tensor,
    pub offset: usize,
    pub from_step: bool,
    /// Rows of one sequence when a batch of sequences is embedded at once; positions
    /// restart for each.
    pub rows_per_sequence: usize,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct EmbeddingParams {
    rows: u32,
    dim: u32,
    vocab: u32,
    scale: f32,
    flags: u32,
    position_offset: u32,
    position_rows: u32,
    rows_per_sequence: u32,
}

/// out[r, :] = table[ids[r], :] * scale (+ positions); `ids` holds u32 token ids.
pub fn embedding(
    rec: &mut Recorder,
    ids: &Tensor,
    table: &Tensor,
    scale: f32,
    positions: Option<Positions>,
    out: &Tensor,
) -> Result<()> {
    let [vocab, dim] = table.shape[..] else {
        return Err(Error::invalid(format!(
            "embedding: table must be 2-D, got {:?}",
            table.shape
        )));
    };
    let rows = ids.len();
    if !matches!(table.encoding, crate::gpu::Encoding::F32) {
        return Err(Error::invalid("embedding: the table must be f32"));
    }
    if out.len() != rows * dim || vocab == 0 {
        return Err(Error::invalid(format!(
            "embedding: {rows} ids into a {vocab}x{dim} table cannot fill output {:?}",
            out.shape
        )));
    }
    let position_rows = match positions {
        Some(p) if p.table.shape.len() == 2 && p.table.shape[1] == dim && p.table.shape[0] > 0 => {
            p.table.shape[0]
        }
        Some(p) => {
            return Err(Error::invalid(format!(
                "embedding: position table {:?} does not have {dim} columns",
                p.table.shape
            )));
        }
        None => 1,
    };
    let params = EmbeddingParams {
        rows: rows as u32,
        dim: dim as u32,
        vocab: vocab as u32,
        scale,
        flags: positions.map_or(0, |p| 1 | (u32::from(p.from_step) << 1)),
        position_offset: positions.map_or(0, |p| p.offset as u32),
        position_rows: position_rows as u32,
        rows_per_sequence: positions.map_or(1, |p| p.rows_per_sequence.max(1)) as u32,
    };
    let placeholder = rec.gpu().placeholder.clone();
    let position_buffer = positions.map_or(&placeholder, |p| &p.table.buffer);
    rec.dispatch(
        &EMBEDDING,
        &params,
        &[&ids.buffer, &table.buffer, position_buffer, &out.buffer],
        [rows as u32, 1, 1],
    )
}
