//! Row softmax, in place.

use super::REDUCE_WGSL;
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::{Recorder, Tensor};

static SOFTMAX_MODULE: Module = Module {
    name: "softmax",
    sources: &[REDUCE_WGSL, include_str!("../../shaders/softmax.wgsl")],
    needs_shader_f16: false,
    needs_subgroups: false,
};

const SOFTMAX: Kernel = Kernel {
    module: &SOFTMAX_MODULE,
    entry: "softmax_main",
    params: &SoftmaxParams::LAYOUT,
    params_binding: ParamsBinding::Storage,
    // rows, in place
    storage: &[ReadWrite],
};
pub(crate) const KERNELS: &[Kernel] = &[SOFTMAX];

uniform! {
    struct SoftmaxParams {
        rows: u32,
        cols: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

pub fn softmax(rec: &mut Recorder, x: &Tensor) -> Result<()> {
    let view = x.matrix();
    if view.cols == 0 {
        return Err(Error::shape(
            "softmax",
            "rows of at least one value",
            format!("{:?}", x.shape),
        ));
    }
    let params = SoftmaxParams {
        rows: view.rows as u32,
        cols: view.cols as u32,
        _pad0: 0,
        _pad1: 0,
    };
    rec.dispatch(&SOFTMAX, &params, &[&x.buffer], [view.rows as u32, 1, 1])
}
