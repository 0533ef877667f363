//! Activations (in place or fused into a matmul), the gated feed-forward product and the
//! residual add.

use crate::error::{Error, Result};
use crate::gpu::plan::grid_1d;
use crate::gpu::shaders::{ACTIVATION_KERNEL, ADD, GATED};
use crate::gpu::{Recorder, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Relu,
    /// Hugging Face "gelu": the exact erf form.
    Gelu,
    /// Hugging Face "gelu_new" / "gelu_pytorch_tanh": the tanh approximation.
    GeluTanh,
    /// "silu" / "swish".
    Silu,
}

impl Activation {
    /// Parses Hugging Face's `activation_function` / `dense_act_fn` names.
    pub fn from_hf_name(name: &str) -> Result<Activation> {
        Ok(match name {
            "relu" => Activation::Relu,
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "silu" | "swish" => Activation::Silu,
            "linear" | "identity" => Activation::Identity,
            other => {
                return Err(Error::format(
                    "config.json",
                    format!("unsupported activation function \"{other}\""),
                ));
            }
        })
    }

    /// Must match the ACT_* constants of shaders/activation.wgsl.
    pub(crate) fn shader_id(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::Gelu => 2,
            Activation::GeluTanh => 3,
            Activation::Silu => 4,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ElementwiseParams {
    count: u32,
    width: u32,
    activation: u32,
    _pad: u32,
}

/// WebGPU forbids one buffer in a read-only and a writable binding of one dispatch.
fn distinct(op: &str, x: &Tensor, y: &Tensor) -> Result<()> {
    if x.buffer == y.buffer {
        return Err(Error::invalid(format!(
            "{op}: input and output must be different tensors"
        )));
    }
    Ok(())
}

fn groups(rec: &Recorder, elements: usize) -> [u32; 3] {
    grid_1d(
        (elements as u32).div_ceil(256),
        rec.gpu().limits.max_compute_workgroups_per_dimension,
    )
}

/// y = act(x), element-wise.
pub fn activation(rec: &mut Recorder, x: &Tensor, y: &Tensor, act: Activation) -> Result<()> {
    distinct("activation", x, y)?;
    if x.len() != y.len() {
        return Err(Error::invalid(format!(
            "activation: input {:?} and output {:?} differ in size",
            x.shape, y.shape
        )));
    }
    let params = ElementwiseParams {
        count: x.len() as u32,
        width: 0,
        activation: act.shader_id(),
        _pad: 0,
    };
    let g = groups(rec, x.len());
    rec.dispatch(&ACTIVATION_KERNEL, &params, &[&x.buffer, &y.buffer], g)
}

/// y[r, c] = act(x[r, c]) * x[r, width + c] for x of shape [rows, 2 * width].
pub fn gated(rec: &mut Recorder, x: &Tensor, y: &Tensor, act: Activation) -> Result<()> {
    distinct("gated", x, y)?;
    let width = *y.shape.last().unwrap_or(&0);
    let rows = y.len().checked_div(width).unwrap_or(0);
    if x.len() != rows * 2 * width || x.shape.last() != Some(&(2 * width)) {
        return Err(Error::invalid(format!(
            "gated: input {:?} must be [rows, 2 * {width}] for output {:?}",
            x.shape, y.shape
        )));
    }
    let params = ElementwiseParams {
        count: rows as u32,
        width: width as u32,
        activation: act.shader_id(),
        _pad: 0,
    };
    let g = groups(rec, y.len());
    rec.dispatch(&GATED, &params, &[&x.buffer, &y.buffer], g)
}

/// y += x.
pub fn add(rec: &mut Recorder, x: &Tensor, y: &Tensor) -> Result<()> {
    distinct("add", x, y)?;
    if x.len() != y.len() {
        return Err(Error::invalid(format!(
            "add: shapes {:?} and {:?} differ in size",
            x.shape, y.shape
        )));
    }
    let params = ElementwiseParams {
        count: x.len() as u32,
        width: 0,
        activation: 0,
        _pad: 0,
    };
    let g = groups(rec, x.len());
    rec.dispatch(&ADD, &params, &[&x.buffer, &y.buffer], g)
}
