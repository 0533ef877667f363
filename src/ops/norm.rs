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
    _pad: u32,
}

/// Normalises each row of `x` into `y` (which may be `x` itself).
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
        _pad: 0,
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
    rec.dispatch(
        kernel,
        &params,
        &[&x.buffer, &y.buffer, &weight.buffer, &bias],
        [rows as u32, 1, 1],
    )
}
