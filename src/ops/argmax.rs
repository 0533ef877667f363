//! Greedy token choice on the GPU.

use crate::error::{Error, Result};
use crate::gpu::shaders::ARGMAX;
use crate::gpu::{Recorder, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ArgmaxParams {
    rows: u32,
    cols: u32,
    _pad: [u32; 2],
}

/// ids[r] = argmax(logits[r, :]) (lowest index on ties); `ids` holds u32.
pub fn argmax(rec: &mut Recorder, logits: &Tensor, ids: &Tensor) -> Result<()> {
    let view = logits.matrix();
    if ids.len() != view.rows || view.cols == 0 {
        return Err(Error::invalid(format!(
            "argmax: {} ids for logits {:?}",
            ids.len(),
            logits.shape
        )));
    }
    let params = ArgmaxParams {
        rows: view.rows as u32,
        cols: view.cols as u32,
        _pad: [0; 2],
    };
    rec.dispatch(
        &ARGMAX,
        &params,
        &[&logits.buffer, &ids.buffer],
        [view.rows as u32, 1, 1],
    )
}
