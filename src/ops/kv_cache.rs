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
    // new rows, cache
    storage: &[Read, ReadWrite],
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
        _pad: u32,
    }
}

/// Copies the rows of `src` (`rows_per_sequence` for each sequence of a batch) into `cache`
/// ([sequences * capacity, width]) after the `step.pos` rows each sequence already holds.
/// The caller keeps `step.pos + rows_per_sequence <= capacity` (the decoder checks it).
pub fn append(
    rec: &mut Recorder,
    src: View,
    cache: &Tensor,
    rows_per_sequence: usize,
    capacity: usize,
) -> Result<()> {
    check_layout(src.rows, src.cols, cache, rows_per_sequence, capacity)?;
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
        _pad: 0,
    };
    rec.dispatch(
        &KV_APPEND,
        &params,
        &[&src.tensor.buffer, &cache.buffer],
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
