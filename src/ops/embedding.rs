//! Token embedding lookup, with absolute position embeddings added in the same pass.

use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, Uniform, uniform};
use crate::gpu::{Encoding, Recorder, Tensor};

static EMBEDDING_MODULE: Module = Module {
    name: "embedding",
    sources: &[include_str!("../../shaders/embedding.wgsl")],
    needs_shader_f16: false,
};

const EMBEDDING: Kernel = Kernel {
    module: &EMBEDDING_MODULE,
    entry: "embedding_main",
    params: &EmbeddingParams::LAYOUT,
    // ids, table, positions, out
    storage: &[Read, Read, Read, ReadWrite],
};
pub(crate) const KERNELS: &[Kernel] = &[EMBEDDING];

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

uniform! {
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
        return Err(Error::shape(
            "embedding",
            "a 2-D table",
            format!("{:?}", table.shape),
        ));
    };
    let rows = ids.len();
    if !matches!(table.encoding, Encoding::F32) {
        return Err(Error::shape(
            "embedding",
            "an f32 table",
            format!("{:?}", table.encoding),
        ));
    }
    if out.len() != rows * dim || vocab == 0 {
        return Err(Error::shape(
            "embedding",
            format!(
                "an output of [{rows}, {dim}] for {rows} ids into a non-empty {vocab}x{dim} table"
            ),
            format!("{:?}", out.shape),
        ));
    }
    let position_rows = match positions {
        Some(p) if p.table.shape.len() == 2 && p.table.shape[1] == dim && p.table.shape[0] > 0 => {
            p.table.shape[0]
        }
        Some(p) => {
            return Err(Error::shape(
                "embedding",
                format!("a position table of {dim} columns"),
                format!("{:?}", p.table.shape),
            ));
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
