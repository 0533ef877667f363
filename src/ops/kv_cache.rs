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
    _pad: [u32; 3],
}

/// Copies the rows of `src` into `cache` ([max_len, width]) starting at row `step.pos`.
/// The caller keeps `step.pos + src.rows <= max_len` (the generation loop checks it).
pub fn append(rec: &mut Recorder, src: View, cache: &Tensor) -> Result<()> {
    let [_, width] = cache.shape[..] else {
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
    let params = AppendParams {
        rows: src.rows as u32,
        width: width as u32,
        src_offset: src.offset as u32,
        src_stride: src.stride as u32,
        dst_stride: width as u32,
        _pad: [0; 3],
    };
    rec.dispatch(
        &KV_APPEND,
        &params,
        &[&src.tensor.buffer, &cache.buffer],
        [src.rows as u32, 1, 1],
    )
}
