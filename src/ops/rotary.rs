//! Rotary position embeddings (RoPE) of a fused QKV projection's queries and keys
//! (shaders/rotary.wgsl), and the decoder cache append of rotary models.

use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::plan::grid_1d;
use crate::gpu::{Recorder, Tensor};
use crate::ops::kv_cache::Pages;

static ROTARY_MODULE: Module = Module {
    name: "rotary",
    sources: &[include_str!("../../shaders/rotary.wgsl")],
    needs_shader_f16: false,
    needs_subgroups: false,
};

const ROTARY: Kernel = Kernel {
    module: &ROTARY_MODULE,
    entry: "rotary_main",
    params: &RotaryParams::LAYOUT,
    params_binding: ParamsBinding::Storage,
    // qkv, the cos/sin table, the cache (a placeholder without an append)
    // qkv, the angle table, the cache, its block table (paged)
    storage: &[ReadWrite, Read, ReadWrite, Read],
};
pub(crate) const KERNELS: &[Kernel] = &[ROTARY];

uniform! {
    struct RotaryParams {
        rows: u32,
        rows_per_sequence: u32,
        heads: u32,
        kv_heads: u32,
        head_dim: u32,
        stride: u32,
        flags: u32,
        table_rows: u32,
        cache_rows: u32,
        block_rows: u32,
        table_stride: u32,
        _pad: u32,
    }
}

const FLAG_STEP: u32 = 1;
const FLAG_APPEND: u32 = 2;

/// The cos and sin of every rotary frequency at positions 0..rows ([rows, head_dim]: the
/// head_dim / 2 cosines, then the sines), computed in f32 as transformers does: inverse
/// frequencies 1 / theta^(2i / head_dim), angles frequency × position.
pub fn rotary_table(theta: f32, head_dim: usize, rows: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let inverse: Vec<f32> = (0..half)
        .map(|i| 1.0 / theta.powf((2 * i) as f32 / head_dim as f32))
        .collect();
    let mut table = Vec::with_capacity(rows * head_dim);
    for pos in 0..rows {
        let angles: Vec<f32> = inverse.iter().map(|f| f * pos as f32).collect();
        table.extend(angles.iter().map(|a| a.cos()));
        table.extend(angles.iter().map(|a| a.sin()));
    }
    table
}

/// Rotated keys and the values go to `cache` ([sequences * capacity, 2 * kv_dim]: keys then
/// values) at row position % capacity of their sequence, instead of staying in the QKV rows.
#[derive(Clone, Copy, Debug)]
pub struct RotaryAppend<'a> {
    pub cache: &'a Tensor,
    pub capacity: usize,
    /// The cache is a pool of blocks that a table per sequence names (see [`Pages`]).
    pub pages: Option<Pages<'a>>,
}

#[derive(Clone, Copy, Debug)]
pub struct Rotary<'a> {
    /// [rows, heads * head_dim + 2 * kv_heads * head_dim]: queries, keys, values.
    pub qkv: &'a Tensor,
    /// From [`rotary_table`], with a row for every position the rows reach.
    pub table: &'a Tensor,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Rows of one sequence: row r is at position r % rows_per_sequence ...
    pub rows_per_sequence: usize,
    /// ... after the `step.pos` tokens already decoded. The caller keeps every position below
    /// the table's rows (the decoder's room check does; the kernel clamps to the last row).
    pub from_step: bool,
    pub append: Option<RotaryAppend<'a>>,
}

/// Rotates the queries and keys of `r.qkv` by their positions (see shaders/rotary.wgsl).
pub fn rotary(rec: &mut Recorder, r: Rotary) -> Result<()> {
    let (inner, kv_dim) = (r.heads * r.head_dim, r.kv_heads * r.head_dim);
    let [rows, stride] = r.qkv.shape[..] else {
        return Err(Error::shape(
            "rotary",
            "a 2-D QKV",
            format!("{:?}", r.qkv.shape),
        ));
    };
    if r.head_dim == 0
        || !r.head_dim.is_multiple_of(2)
        || stride != inner + 2 * kv_dim
        || r.rows_per_sequence == 0
        || !rows.is_multiple_of(r.rows_per_sequence)
    {
        return Err(Error::shape(
            "rotary",
            format!(
                "rows of {} queries and {} keys and values of an even head dimension, whole sequences",
                inner, kv_dim
            ),
            format!(
                "QKV {:?}, head dimension {}, {} rows per sequence",
                r.qkv.shape, r.head_dim, r.rows_per_sequence
            ),
        ));
    }
    let table_rows = r.table.len() / r.head_dim;
    if r.table.shape[..] != [table_rows, r.head_dim] || table_rows < r.rows_per_sequence {
        return Err(Error::shape(
            "rotary table",
            format!(
                "[positions, {}] for at least {} positions",
                r.head_dim, r.rows_per_sequence
            ),
            format!("{:?}", r.table.shape),
        ));
    }
    let placeholder = rec.gpu().write_placeholder.clone();
    let (cache, cache_rows) = match r.append {
        Some(append) => {
            let sequences = rows / r.rows_per_sequence;
            // A paged cache is a pool of any number of blocks, each sequence holding capacity
            // positions in the blocks its table names.
            let cache_rows = match append.pages {
                Some(pages) => {
                    let pool_rows = append.cache.shape.first().copied().unwrap_or(0);
                    match pages.check(sequences, pool_rows)? == append.capacity {
                        true => pool_rows,
                        false => 0,
                    }
                }
                None => sequences * append.capacity,
            };
            if append.cache.shape[..] != [cache_rows, 2 * kv_dim]
                || r.rows_per_sequence > append.capacity
            {
                return Err(Error::shape(
                    "rotary append",
                    format!(
                        "a cache [{} x capacity, {}] of at least {} rows per sequence",
                        sequences,
                        2 * kv_dim,
                        r.rows_per_sequence
                    ),
                    format!("{:?} of {} rows each", append.cache.shape, append.capacity),
                ));
            }
            (&append.cache.buffer, append.capacity)
        }
        None => (&placeholder, 1),
    };
    let pages = r.append.and_then(|a| a.pages);
    let params = RotaryParams {
        rows: rows as u32,
        rows_per_sequence: r.rows_per_sequence as u32,
        heads: r.heads as u32,
        kv_heads: r.kv_heads as u32,
        head_dim: r.head_dim as u32,
        stride: stride as u32,
        flags: (u32::from(r.from_step) * FLAG_STEP) | (u32::from(r.append.is_some()) * FLAG_APPEND),
        table_rows: table_rows as u32,
        cache_rows: cache_rows as u32,
        block_rows: pages.map_or(0, |p| p.block_rows as u32),
        table_stride: pages.map_or(0, |p| p.blocks_per_sequence as u32),
        _pad: 0,
    };
    let limit = rec.gpu().limits.max_compute_workgroups_per_dimension;
    let read_placeholder = rec.gpu().placeholder.clone();
    let block_table = pages.map_or(&read_placeholder, |p| &p.table.buffer);
    rec.dispatch(
        &ROTARY,
        &params,
        &[&r.qkv.buffer, &r.table.buffer, cache, block_table],
        grid_1d(rows as u32, limit),
    )
}
