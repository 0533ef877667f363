//! Greedy token choice on the GPU.

use crate::error::{Error, Result};
use crate::gpu::shaders::ARGMAX;
use crate::gpu::{Recorder, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ArgmaxParams {
    rows: u32,
    cols: u32,
    mapped: u32,
    _pad: u32,
}

/// ids[r] = argmax(logits[r, :]) (lowest index on ties); `ids` holds u32. With a
/// `vocabulary` (u32, one token id per logits column, ascending), ids holds the token id
/// of the winning column.
pub fn argmax(
    rec: &mut Recorder,
    logits: &Tensor,
    ids: &Tensor,
    vocabulary: Option<&Tensor>,
) -> Result<()> {
    let view = logits.matrix();
    if ids.len() != view.rows || view.cols == 0 {
        return Err(Error::invalid(format!(
            "argmax: {} ids for logits {:?}",
            ids.len(),
            logits.shape
        )));
    }
    if let Some(v) = vocabulary
        && v.len() != view.cols
    {
        return Err(Error::invalid(format!(
            "argmax: a vocabulary of {} ids for {} logits columns",
            v.len(),
            view.cols
        )));
    }
    let params = ArgmaxParams {
        rows: view.rows as u32,
        cols: view.cols as u32,
        mapped: u32::from(vocabulary.is_some()),
        _pad: 0,
    };
    let placeholder = rec.gpu().placeholder.clone();
    rec.dispatch(
        &ARGMAX,
        &params,
        &[
            &logits.buffer,
            &ids.buffer,
            vocabulary.map_or(&placeholder, |v| &v.buffer),
        ],
        [view.rows as u32, 1, 1],
    )
}
