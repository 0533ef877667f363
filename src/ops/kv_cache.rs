//! In-place append to the preallocated self-attention cache.

use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::{Recorder, Tensor, View};

static KV_APPEND_MODULE: Module = Module {
    name: "kv_cache",
    sources: &[include_str!("../../shaders/kv_cache.wgsl")],
    needs_shader_f16: false,
    needs_subgroups: false,
};

const KV_APPEND: Kernel = Kernel {
    module: &KV_APPEND_MODULE,
    entry: "append_main",
    params: &AppendParams::LAYOUT,
    params_binding: ParamsBinding::Storage,
    // new rows, cache, block table
    storage: &[Read, ReadWrite, Read],
};
pub(crate) const KERNELS: &[Kernel] = &[KV_APPEND];

uniform! {
    struct AppendParams {
        rows: u32,
        width: u32,
        src_offset: u32,
        src_stride: u32,
        dst_stride: u32,
        rows_per_sequence: u32,
        capacity: u32,
        block_rows: u32,
        table_stride: u32,
        _pad: u32,
    }
}

/// A paged self-attention cache: one pool of blocks of `block_rows` rows, and for each
/// sequence a row of `blocks_per_sequence` entries of `table` (u32) naming the block that
/// holds its positions p with p / block_rows equal to the entry's index (vLLM's paged
/// attention). Rows finished with give their blocks back without moving anything.
#[derive(Clone, Copy, Debug)]
pub struct Pages<'a> {
    pub table: &'a Tensor,
    pub block_rows: usize,
    pub blocks_per_sequence: usize,
}

impl Pages<'_> {
    /// Checks the table against `sequences` and a pool of `pool_rows` rows; returns the
    /// positions each sequence can hold.
    pub(crate) fn check(&self, sequences: usize, pool_rows: usize) -> Result<usize> {
        if self.block_rows == 0
            || self.blocks_per_sequence == 0
            || self.table.len() != sequences * self.blocks_per_sequence
            || !pool_rows.is_multiple_of(self.block_rows)
        {
            return Err(Error::shape(
                "paged cache",
                format!(
                    "a table of {sequences} x {} blocks of {} rows over a pool of whole blocks",
                    self.blocks_per_sequence, self.block_rows
                ),
                format!("table {:?}, pool of {pool_rows} rows", self.table.shape),
            ));
        }
        Ok(self.blocks_per_sequence * self.block_rows)
    }
}

/// Copies the rows of `src` (`rows_per_sequence` for each sequence of a batch) into `cache`
/// ([sequences * capacity, width]) after the rows each sequence already holds, or with
/// `pages` into the blocks of the pool `cache` that each sequence's table names. The
/// caller keeps each sequence within its capacity (the decoder checks it).
pub fn append(
    rec: &mut Recorder,
    src: View,
    cache: &Tensor,
    rows_per_sequence: usize,
    capacity: usize,
    pages: Option<Pages>,
) -> Result<()> {
    match pages {
        Some(pages) => {
            let sequences = src.rows.checked_div(rows_per_sequence).unwrap_or(0);
            let held = pages.check(sequences, cache.shape.first().copied().unwrap_or(0))?;
            if sequences * rows_per_sequence != src.rows
                || held != capacity
                || cache.shape.get(1) != Some(&src.cols)
            {
                return Err(Error::shape(
                    "kv append",
                    format!("whole sequences of {rows_per_sequence} rows, {held} positions each"),
                    format!("{} rows, capacity {capacity}", src.rows),
                ));
            }
        }
        None => check_layout(src.rows, src.cols, cache, rows_per_sequence, capacity)?,
    }
    src.check("kv append")?;
    let width = cache.shape[1];
    let params = AppendParams {
        rows: src.rows as u32,
        width: width as u32,
        src_offset: src.offset as u32,
        src_stride: src.stride as u32,
        dst_stride: width as u32,
        rows_per_sequence: rows_per_sequence as u32,
        capacity: capacity as u32,
        block_rows: pages.map_or(0, |p| p.block_rows as u32),
        table_stride: pages.map_or(0, |p| p.blocks_per_sequence as u32),
        _pad: 0,
    };
    let placeholder = rec.gpu().placeholder.clone();
    let table = pages.map_or(&placeholder, |p| &p.table.buffer);
    rec.dispatch(
        &KV_APPEND,
        &params,
        &[&src.tensor.buffer, &cache.buffer, table],
        [src.rows as u32, 1, 1],
    )
}

/// Checks that `rows` new rows of `cols` values, `rows_per_sequence` for each sequence, fit
/// `cache` ([sequences * capacity, cols]): the kernel and the fused QKV projection's append.
pub(super) fn check_layout(
    rows: usize,
    cols: usize,
    cache: &Tensor,
    rows_per_sequence: usize,
    capacity: usize,
) -> Result<()> {
    let [cache_rows, width] = cache.shape[..] else {
        return Err(Error::shape(
            "kv append",
            "a 2-D cache",
            format!("{:?}", cache.shape),
        ));
    };
    if cols != width {
        return Err(Error::shape(
            "kv append",
            format!("rows of the cache's width {width}"),
            format!("rows of {cols} values"),
        ));
    }
    let sequences = rows.checked_div(rows_per_sequence).unwrap_or(0);
    // A ring cache must still hold every row one step appends.
    if sequences * rows_per_sequence != rows
        || sequences * capacity != cache_rows
        || rows_per_sequence > capacity
    {
        return Err(Error::shape(
            "kv append",
            format!("whole sequences of {rows_per_sequence} rows, {capacity} cache rows each"),
            format!("{rows} rows into a cache of {cache_rows} rows"),
        ));
    }
    Ok(())
}
