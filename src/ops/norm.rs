//! LayerNorm and RMSNorm over the last dimension.

use crate::error::{Error, Result};
use crate::gpu::shaders::{LAYER_NORM, RMS_NORM};
use crate::gpu::{Recorder, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormKind {
    /// (x - mean) / sqrt(var + eps) * weight + bias.
    LayerNorm,
    /// T5's: x / sqrt(mean(x²) + eps) * weight; no mean subtraction, no bias.
    RmsNorm,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct NormParams {
    rows: u32,
    cols: u32,
    eps: f32,
    in_place: u32,
}

/// Normalises each row of `x` into `y` (which may be `x` itself: in place).
pub fn norm(
    rec: &mut Recorder,
    kind: NormKind,
    x: &Tensor,
    y: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    eps: f32,
) -> Result<()> {
    let cols = weight.len();
    if cols == 0
        || !x.len().is_multiple_of(cols)
        || x.shape.last() != Some(&cols)
        || y.len() != x.len()
    {
        return Err(Error::invalid(format!(
            "norm: input {:?}, output {:?} and weight {:?} do not fit",
            x.shape, y.shape, weight.shape
        )));
    }
    let rows = x.len() / cols;
    let params = NormParams {
        rows: rows as u32,
        cols: cols as u32,
        eps,
        in_place: u32::from(x.buffer == y.buffer),
    };
    let kernel = match kind {
        NormKind::LayerNorm => &LAYER_NORM,
        NormKind::RmsNorm => &RMS_NORM,
    };
    let bias = match (kind, bias) {
        (NormKind::LayerNorm, Some(b)) if b.len() == cols => b.buffer.clone(),
        (NormKind::LayerNorm, _) => {
            return Err(Error::invalid(format!(
                "layer norm needs a bias of {cols} elements"
            )));
        }
        (NormKind::RmsNorm, _) => rec.gpu().placeholder.clone(),
    };
    // In place, the kernel reads y; WebGPU forbids binding it twice as writable.
    let input = if x.buffer == y.buffer {
        rec.gpu().placeholder.clone()
    } else {
        x.buffer.clone()
    };
    rec.dispatch(
        kernel,
        &params,
        &[&input, &y.buffer, &weight.buffer, &bias],
        [rows as u32, 1, 1],
    )
}
