//! Token embedding lookup, with absolute position embeddings added in the same pass.

use super::weight_reader::WeightReader;
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::{Recorder, RowBlocks, Tensor};

/// A static's initializer (where the source list may borrow a temporary).
macro_rules! embedding_module {
    ($name:literal, $reader:expr) => {
        Module {
            name: $name,
            sources: &[
                $reader.source(),
                include_str!("../../shaders/embedding.wgsl"),
            ],
            needs_shader_f16: $reader.needs_shader_f16(),
            needs_subgroups: false,
        }
    };
}

/// One module per table reader, in `WeightReader::ALL` order.
static TABLE_MODULES: [Module; 4] = [
    embedding_module!("embedding", WeightReader::F32),
    embedding_module!("embedding_f16", WeightReader::F16Packed),
    embedding_module!("embedding_f16_native", WeightReader::F16Native),
    embedding_module!("embedding_i8", WeightReader::Int8),
];

const fn kernel(reader: WeightReader) -> Kernel {
    Kernel {
        module: &TABLE_MODULES[reader.index()],
        entry: "embedding_main",
        params: &EmbeddingParams::LAYOUT,
        params_binding: ParamsBinding::Storage,
        // ids, table, positions, out, the table's row scales (int8)
        storage: &[Read, Read, Read, ReadWrite, Read],
    }
}

pub(crate) const KERNELS: &[Kernel] = &[
    kernel(WeightReader::ALL[0]),
    kernel(WeightReader::ALL[1]),
    kernel(WeightReader::ALL[2]),
    kernel(WeightReader::ALL[3]),
];

/// Rows of a position table to add: row `offset + r` (plus `step.pos` when `from_step`)
/// goes to output row `r`.
#[derive(Clone, Copy, Debug)]
pub struct Positions<'a> {
    pub table: &'a RowBlocks,
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
        table_first: u32,
        table_rows: u32,
        position_first: u32,
        position_block_rows: u32,
    }
}

const FLAG_POSITIONS: u32 = 1;
const FLAG_STEP: u32 = 2;
const FLAG_TOKENS: u32 = 4;

/// out[r, :] = table[ids[r], :] * scale (+ positions); `ids` holds u32 token ids. Tables in
/// row blocks take a pass per block.
pub fn embedding(
    rec: &mut Recorder,
    ids: &Tensor,
    table: &RowBlocks,
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
    let base = EmbeddingParams {
        rows: rows as u32,
        dim: dim as u32,
        vocab: vocab as u32,
        scale,
        flags: positions.map_or(0, |p| u32::from(p.from_step) * FLAG_STEP),
        position_offset: positions.map_or(0, |p| p.offset as u32),
        position_rows: position_rows as u32,
        rows_per_sequence: positions.map_or(1, |p| p.rows_per_sequence.max(1)) as u32,
        table_first: 0,
        table_rows: vocab as u32,
        position_first: 0,
        position_block_rows: position_rows as u32,
    };
    let placeholder = rec.gpu().placeholder.clone();
    let native_f16 = rec.gpu().native_f16();
    // A positions-only pass binds no table: the f32 reader, which reads no scales.
    let pass =
        |rec: &mut Recorder, params: EmbeddingParams, t: Option<&Tensor>, p: &wgpu::Buffer| {
            let (reader, scales) = match t {
                Some(t) => WeightReader::choose(&t.encoding, native_f16),
                None => (WeightReader::F32, None),
            };
            let table = t.map_or(&placeholder, |t| &t.buffer);
            let scales = scales.unwrap_or(&placeholder);
            let buffers = [&ids.buffer, table, p, &out.buffer, scales];
            rec.dispatch(&kernel(reader), &params, &buffers, [rows as u32, 1, 1])
        };
    let position_parts = positions.map(|p| p.table.single());
    match (table.single(), position_parts) {
        (Some(one), None) => pass(
            rec,
            EmbeddingParams {
                flags: base.flags | FLAG_TOKENS,
                ..base
            },
            Some(one),
            &placeholder,
        ),
        (Some(one), Some(Some(p))) => pass(
            rec,
            EmbeddingParams {
                flags: base.flags | FLAG_TOKENS | FLAG_POSITIONS,
                ..base
            },
            Some(one),
            &p.buffer,
        ),
        _ => {
            for (first, part) in table.blocks() {
                let params = EmbeddingParams {
                    flags: base.flags | FLAG_TOKENS,
                    table_first: first as u32,
                    table_rows: part.shape[0] as u32,
                    ..base
                };
                pass(rec, params, Some(part), &placeholder)?;
            }
            for (first, part) in positions.iter().flat_map(|p| p.table.blocks()) {
                let params = EmbeddingParams {
                    flags: base.flags | FLAG_POSITIONS,
                    position_first: first as u32,
                    position_block_rows: part.shape[0] as u32,
                    ..base
                };
                pass(rec, params, None, &part.buffer)?;
            }
            Ok(())
        }
    }
}
