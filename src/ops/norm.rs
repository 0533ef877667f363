//! LayerNorm and RMSNorm over the last dimension, and the norm a kernel applies to the rows
//! it reads.

use super::REDUCE_WGSL;
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::{Gpu, Recorder, Tensor};
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
        params_binding: ParamsBinding::Storage,
        // x (a placeholder in place), y, the norm's values
        storage: &[Read, ReadWrite, Read],
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
        accumulate: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

/// A norm with its learned values in one buffer, [1, d] (RMSNorm: the weight) or [2, d]
/// (LayerNorm: the weight, then the bias), so that every kernel that applies it binds one
/// buffer: the fused kernels have few bindings to spare.
#[derive(Clone, Debug)]
pub struct Norm {
    pub kind: NormKind,
    pub values: Tensor,
    pub eps: f32,
}

impl Norm {
    /// The norm of `kind` with `weight`, and `bias` for LayerNorm (RMSNorm takes none).
    pub fn upload(
        gpu: &Gpu,
        kind: NormKind,
        weight: &[f32],
        bias: Option<&[f32]>,
        eps: f32,
    ) -> Result<Norm> {
        let d = weight.len();
        let values = match (kind, bias) {
            (NormKind::LayerNorm, Some(bias)) if bias.len() == d && d > 0 => {
                Tensor::upload_f32(gpu, "layer norm", &[weight, bias].concat(), &[2, d])?
            }
            (NormKind::RmsNorm, None) if d > 0 => {
                Tensor::upload_f32(gpu, "rms norm", weight, &[1, d])?
            }
            (kind, bias) => {
                return Err(Error::shape(
                    "norm",
                    format!("a weight, and for LayerNorm a bias of the same length ({kind:?})"),
                    format!("a weight of {d}, bias {:?}", bias.map(<[f32]>::len)),
                ));
            }
        };
        Ok(Norm { kind, values, eps })
    }

    /// The length of the rows it normalises.
    pub fn dim(&self) -> usize {
        self.values.shape[1]
    }

    /// A shape error unless the norm takes rows of `cols` values.
    pub(crate) fn check_rows(&self, op: &'static str, cols: usize) -> Result<()> {
        match self.dim() == cols {
            true => Ok(()),
            false => Err(Error::shape(
                op,
                format!("a norm of the rows' {cols} values"),
                format!("a norm of {}", self.dim()),
            )),
        }
    }
}

/// Normalises each row of `x` into `y` (which may be `x` itself: in place).
pub fn norm(rec: &mut Recorder, norm: &Norm, x: &Tensor, y: &Tensor) -> Result<()> {
    record(rec, norm, x, y, false)
}

/// y += norm(x), row by row: a sublayer's output normalised into the residual stream.
pub fn norm_add(rec: &mut Recorder, norm: &Norm, x: &Tensor, y: &Tensor) -> Result<()> {
    if x.buffer == y.buffer {
        return Err(Error::invalid(
            "norm_add: the output must be another buffer",
        ));
    }
    record(rec, norm, x, y, true)
}

fn record(rec: &mut Recorder, norm: &Norm, x: &Tensor, y: &Tensor, accumulate: bool) -> Result<()> {
    let cols = norm.dim();
    if !x.len().is_multiple_of(cols) || x.shape.last() != Some(&cols) || y.len() != x.len() {
        return Err(Error::shape(
            "norm",
            format!("input and output of rows of the norm's {cols} values"),
            format!("input {:?}, output {:?}", x.shape, y.shape),
        ));
    }
    let rows = x.len() / cols;
    let params = NormParams {
        rows: rows as u32,
        cols: cols as u32,
        eps: norm.eps,
        in_place: u32::from(x.buffer == y.buffer),
        accumulate: u32::from(accumulate),
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    let kernel = match norm.kind {
        NormKind::LayerNorm => &LAYER_NORM,
        NormKind::RmsNorm => &RMS_NORM,
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
        &[&input, &y.buffer, &norm.values.buffer],
        [rows as u32, 1, 1],
    )
}
