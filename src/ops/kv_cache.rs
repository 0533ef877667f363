//! In-place append to the preallocated self-attention cache.

use crate::error::{Error, Result};
use crate::gpu::shaders::KV_APPEND;
use crate::gpu::{Recorder, Tensor, View};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
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
    let [cache_rows, width] = cache.shape[..] else {
        return Err(Error::invalid(format!(
            "kv cache must be 2-D, got {:?}",
            cache.shape
        )));
    };
    if src.cols != width {
        return Err(Error::invalid(format!(
            "kv append: rows of {} values into a cache of width {width}",
            src.cols
        )));
    }
    src.check("kv append source")?;
    let sequences = src.rows.checked_div(rows_per_sequence).unwrap_or(0);
    if sequences * rows_per_sequence != src.rows || sequences * capacity != cache_rows {
        return Err(Error::invalid(format!(
            "kv append: {} rows of {rows_per_sequence} per sequence into a cache of {cache_rows} rows of capacity {capacity}",
            src.rows
        )));
    }
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
