//! Greedy token choice on the GPU.

use super::REDUCE_WGSL;
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
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
    params_binding: ParamsBinding::Storage,
    // logits, ids, the shortlist's vocabulary
    storage: &[Read, ReadWrite, Read],
};
const ARGMAX_PARTIALS: Kernel = Kernel {
    entry: "argmax_partials_main",
    ..ARGMAX
};
pub(crate) const KERNELS: &[Kernel] = &[ARGMAX, ARGMAX_PARTIALS];

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
    let (rows, cols) = check_choice("argmax", logits, ids, vocabulary)?;
    let params = ArgmaxParams {
        rows,
        cols,
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
        [rows, 1, 1],
    )
}

/// ids[r] = the best column of row r's argmax `partials` ([rows, partials, 2], the first
/// stage the output layer's fused dispatch leaves: see `Fusion::argmax`), mapped through
/// `vocabulary` as [`argmax`] does.
pub fn argmax_partials(
    rec: &mut Recorder,
    partials: &Tensor,
    ids: &Tensor,
    vocabulary: Option<&Tensor>,
) -> Result<()> {
    let &[rows, count, 2] = &partials.shape[..] else {
        return Err(Error::shape(
            "argmax partials",
            "[rows, partials, 2]",
            format!("{:?}", partials.shape),
        ));
    };
    if ids.len() != rows || count == 0 {
        return Err(Error::shape(
            "argmax partials",
            format!("one id per row of partials {:?}", partials.shape),
            format!("{} ids", ids.len()),
        ));
    }
    // Each partial covers up to 4 columns: the vocabulary has one id per column.
    if let Some(v) = vocabulary
        && v.len().div_ceil(4) != count
    {
        return Err(Error::shape(
            "argmax partials",
            format!("a vocabulary of the columns of {count} partials"),
            format!("{} ids", v.len()),
        ));
    }
    let params = ArgmaxParams {
        rows: rows as u32,
        cols: count as u32,
        mapped: u32::from(vocabulary.is_some()),
        _pad: 0,
    };
    let placeholder = rec.gpu().placeholder.clone();
    rec.dispatch(
        &ARGMAX_PARTIALS,
        &params,
        &[
            &partials.buffer,
            &ids.buffer,
            vocabulary.map_or(&placeholder, |v| &v.buffer),
        ],
        [rows as u32, 1, 1],
    )
}

/// The rows and columns of `logits` when `ids` holds one token per row and `vocabulary`,
/// if any, one token id per column: the operands of a kernel that chooses tokens.
pub(super) fn check_choice(
    op: &'static str,
    logits: &Tensor,
    ids: &Tensor,
    vocabulary: Option<&Tensor>,
) -> Result<(u32, u32)> {
    let view = logits.matrix();
    if ids.len() != view.rows || view.cols == 0 {
        return Err(Error::shape(
            op,
            format!("one id per row of logits {:?}", logits.shape),
            format!("{} ids", ids.len()),
        ));
    }
    if let Some(v) = vocabulary
        && v.len() != view.cols
    {
        return Err(Error::shape(
            op,
            format!("a vocabulary of {} ids, one per logits column", view.cols),
            format!("{} ids", v.len()),
        ));
    }
    Ok((view.rows as u32, view.cols as u32))
}
