//! Greedy token choice on the GPU.

use super::REDUCE_WGSL;
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, Uniform, uniform};
use crate::gpu::{Recorder, Tensor};

static ARGMAX_MODULE: Module = Module {
    name: "argmax",
    sources: &[REDUCE_WGSL, include_str!("../../shaders/argmax.wgsl")],
    needs_shader_f16: false,
    needs_subgroups: false,
};

const ARGMAX: Kernel = Kernel {
    module: &ARGMAX_MODULE,
    entry: "argmax_main",
    params: &ArgmaxParams::LAYOUT,
    // logits, ids, the shortlist's vocabulary
    storage: &[Read, ReadWrite, Read],
};
pub(crate) const KERNELS: &[Kernel] = &[ARGMAX];

uniform! {
    struct ArgmaxParams {
        rows: u32,
        cols: u32,
        mapped: u32,
        _pad: u32,
    }
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
        return Err(Error::shape(
            "argmax",
            format!("one id per row of logits {:?}", logits.shape),
            format!("{} ids", ids.len()),
        ));
    }
    if let Some(v) = vocabulary
        && v.len() != view.cols
    {
        return Err(Error::shape(
            "argmax",
            format!("a vocabulary of {} ids, one per logits column", view.cols),
            format!("{} ids", v.len()),
        ));
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
