//! Sampled token choice on the GPU: temperature, top-k, top-p and a seeded draw, in one
//! dispatch that writes each row's token id (see shaders/sample.wgsl). The CPU draws the
//! same tokens from the same noise (`generate::sampling`), for generations whose logits
//! processors need the sequence and so run there.

use super::argmax::check_choice;
use super::{RADIX_CUTOFF_WGSL, REDUCE_WGSL};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::{Recorder, Tensor};

static SAMPLE_MODULE: Module = Module {
    name: "sample",
    sources: &[
        REDUCE_WGSL,
        RADIX_CUTOFF_WGSL,
        include_str!("../../shaders/sample.wgsl"),
    ],
    needs_shader_f16: false,
    needs_subgroups: false,
};

const SAMPLE: Kernel = Kernel {
    module: &SAMPLE_MODULE,
    entry: "sample_main",
    params: &SampleParams::LAYOUT,
    params_binding: ParamsBinding::Storage,
    // logits, ids, the shortlist's vocabulary
    storage: &[Read, ReadWrite, Read],
};
pub(crate) const KERNELS: &[Kernel] = &[SAMPLE];

uniform! {
    struct SampleParams {
        rows: u32,
        cols: u32,
        mapped: u32,
        top_k: u32,
        temperature: f32,
        top_p: f32,
        seed_lo: u32,
        seed_hi: u32,
    }
}

/// transformers' sampling settings, and the seed of the noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Scores are divided by it; positive.
    pub temperature: f32,
    /// Only tokens scoring at least the k-th best are drawn; 0 keeps all.
    pub top_k: usize,
    /// Only the smallest set of best tokens holding this share of the probability (after
    /// top-k) is drawn; in (0, 1], 1 keeps all.
    pub top_p: f32,
    pub seed: u64,
}

/// ids[r] = a token drawn from row r of `logits` as `sampling` says, with the noise of row
/// r at the plan's step position; with a `vocabulary` (one token id per column), the token
/// id of the drawn column.
pub fn sample(
    rec: &mut Recorder,
    logits: &Tensor,
    ids: &Tensor,
    vocabulary: Option<&Tensor>,
    sampling: &Sampling,
) -> Result<()> {
    let (rows, cols) = check_choice("sample", logits, ids, vocabulary)?;
    let Sampling {
        temperature,
        top_k,
        top_p,
        seed,
    } = *sampling;
    if !(temperature.is_finite() && temperature > 0.0 && top_p > 0.0 && top_p <= 1.0) {
        return Err(Error::invalid(format!(
            "sampling needs a positive temperature and top_p in (0, 1], not {temperature} and {top_p}"
        )));
    }
    let params = SampleParams {
        rows,
        cols,
        mapped: u32::from(vocabulary.is_some()),
        // A cut at or past the row keeps every column, as none at all does.
        top_k: top_k.min(cols as usize) as u32,
        temperature,
        top_p,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
    };
    let placeholder = rec.gpu().placeholder.clone();
    rec.dispatch(
        &SAMPLE,
        &params,
        &[
            &logits.buffer,
            &ids.buffer,
            vocabulary.map_or(&placeholder, |v| &v.buffer),
        ],
        [rows, 1, 1],
    )
}
