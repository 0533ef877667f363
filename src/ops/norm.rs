//! LayerNorm and RMSNorm over the last dimension.

use super::REDUCE_WGSL;
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, Uniform, uniform};
use crate::gpu::{Recorder, Tensor};
use crate::model::spec::NormKind;

static NORM_MODULE: Module = Module {
    name: "norm",
    sources: &[REDUCE_WGSL, include_str!("../../shaders/norm.wgsl")],
    needs_shader_f16: false,
    needs_subgroups: false,
};

const fn norm_kernel(entry: &'static str) -> Kernel {
    Kernel {
        module: &NORM_MODULE,
        entry,
        params: &NormParams::LAYOUT,
        // x (a placeholder in place), y, weight, bias
        storage: &[Read, ReadWrite, Read, Read],
    }
}

const LAYER_NORM: Kernel = norm_kernel("layer_norm_main");
const RMS_NORM: Kernel = norm_kernel("rms_norm_main");
pub(crate) const KERNELS: &[Kernel] = &[LAYER_NORM, RMS_NORM];

uniform! {
    struct NormParams {
        rows: u32,
        cols: u32,
        eps: f32,
        in_place: u32,
    }
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
        return Err(Error::shape(
            "norm",
            format!("input and output of rows of the weight's {cols} values"),
            format!("input {:?}, output {:?}", x.shape, y.shape),
        ));
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
        (NormKind::LayerNorm, found) => {
            return Err(Error::shape(
                "layer norm",
                format!("a bias of {cols} elements"),
                found.map_or("none".into(), |b| format!("{:?}", b.shape)),
            ));
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
