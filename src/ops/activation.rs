//! Activations (in place or fused into a matmul), the gated feed-forward product and the
//! residual add: the element-wise kernels of shaders/elementwise.wgsl.

use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::plan::grid_1d;
use crate::gpu::{Recorder, Tensor};
use crate::model::spec::Activation;

/// The activation functions by id, for every module that applies one (matmul epilogues too).
pub(crate) const ACTIVATION_WGSL: &str = include_str!("../../shaders/activation.wgsl");

static ELEMENTWISE: Module = Module {
    name: "elementwise",
    sources: &[
        ACTIVATION_WGSL,
        include_str!("../../shaders/elementwise.wgsl"),
    ],
    needs_shader_f16: false,
    needs_subgroups: false,
};

const fn elementwise(entry: &'static str) -> Kernel {
    Kernel {
        module: &ELEMENTWISE,
        entry,
        params: &ElementwiseParams::LAYOUT,
        params_binding: ParamsBinding::Storage,
        storage: &[Read, ReadWrite],
    }
}

const ACTIVATE: Kernel = elementwise("activation_main");
const GATED: Kernel = elementwise("gated_main");
const ADD: Kernel = elementwise("add_main");
pub(crate) const KERNELS: &[Kernel] = &[ACTIVATE, GATED, ADD];

/// The id of an activation in shaders/activation.wgsl (its ACT_* constants).
pub(crate) fn shader_id(activation: Activation) -> u32 {
    match activation {
        Activation::Identity => 0,
        Activation::Relu => 1,
        Activation::Gelu => 2,
        Activation::GeluTanh => 3,
        Activation::Silu => 4,
    }
}

uniform! {
    struct ElementwiseParams {
        count: u32,
        width: u32,
        activation: u32,
        _pad: u32,
    }
}

/// WebGPU forbids one buffer in a read-only and a writable binding of one dispatch.
fn distinct(op: &'static str, x: &Tensor, y: &Tensor) -> Result<()> {
    if x.buffer == y.buffer {
        return Err(Error::shape(
            op,
            "an output in another buffer than the input",
            "one buffer for both",
        ));
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
        return Err(Error::shape(
            "activation",
            format!("an output of {} elements like input {:?}", x.len(), x.shape),
            format!("{:?}", y.shape),
        ));
    }
    let params = ElementwiseParams {
        count: x.len() as u32,
        width: 0,
        activation: shader_id(act),
        _pad: 0,
    };
    let g = groups(rec, x.len());
    rec.dispatch(&ACTIVATE, &params, &[&x.buffer, &y.buffer], g)
}

/// y[r, c] = act(x[r, c]) * x[r, width + c] for x of shape [rows, 2 * width].
pub fn gated(rec: &mut Recorder, x: &Tensor, y: &Tensor, act: Activation) -> Result<()> {
    distinct("gated", x, y)?;
    let width = *y.shape.last().unwrap_or(&0);
    let rows = y.len().checked_div(width).unwrap_or(0);
    if x.len() != rows * 2 * width || x.shape.last() != Some(&(2 * width)) {
        return Err(Error::shape(
            "gated",
            format!("input [{rows}, {}] for output {:?}", 2 * width, y.shape),
            format!("{:?}", x.shape),
        ));
    }
    let params = ElementwiseParams {
        count: rows as u32,
        width: width as u32,
        activation: shader_id(act),
        _pad: 0,
    };
    let g = groups(rec, y.len());
    rec.dispatch(&GATED, &params, &[&x.buffer, &y.buffer], g)
}

/// y += x.
pub fn add(rec: &mut Recorder, x: &Tensor, y: &Tensor) -> Result<()> {
    distinct("add", x, y)?;
    if x.len() != y.len() {
        return Err(Error::shape(
            "add",
            format!("two tensors of one size, like {:?}", y.shape),
            format!("{:?}", x.shape),
        ));
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
