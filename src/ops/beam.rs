//! Beam search's scoring step on the GPU: log-softmax, plus each beam's score, and the best
//! `keep` continuations of each input in order (see shaders/beam.wgsl), so that a step reads
//! back those instead of the logits.

use super::{RADIX_CUTOFF_WGSL, REDUCE_WGSL};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::{Recorder, Tensor};

static BEAM_MODULE: Module = Module {
    name: "beam",
    sources: &[
        REDUCE_WGSL,
        RADIX_CUTOFF_WGSL,
        include_str!("../../shaders/beam.wgsl"),
    ],
    needs_shader_f16: false,
    needs_subgroups: false,
};

const BEAM: Kernel = Kernel {
    module: &BEAM_MODULE,
    entry: "beam_main",
    params: &BeamParams::LAYOUT,
    params_binding: ParamsBinding::Storage,
    // logits, beam scores, candidates, the shortlist's vocabulary
    storage: &[Read, Read, ReadWrite, Read],
};
pub(crate) const KERNELS: &[Kernel] = &[BEAM];

uniform! {
    struct BeamParams {
        inputs: u32,
        beams: u32,
        cols: u32,
        keep: u32,
        vocab: u32,
        mapped: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

/// The most beams per input and candidates kept per input the kernel takes.
const MAX_BEAMS: usize = 64;
const MAX_BEAM_CANDIDATES: usize = 256;

/// Whether the kernel takes `beams` beams per input keeping `keep` candidates of each input's
/// `beams * cols` continuations (one workgroup holds them all).
pub fn beam_kernel_fits(beams: usize, keep: usize, cols: usize) -> bool {
    (1..=MAX_BEAMS).contains(&beams) && (1..=MAX_BEAM_CANDIDATES.min(beams * cols)).contains(&keep)
}

/// Where one scoring step reads and writes: `logits` [inputs * beams, cols] (cols = vocab,
/// or a shortlist's columns with `vocabulary` their token ids), `scores` f32 [inputs *
/// beams] the running scores, `candidates` u32 [inputs, keep, 2].
pub struct BeamScoring<'a> {
    pub logits: &'a Tensor,
    pub scores: &'a Tensor,
    pub candidates: &'a Tensor,
    pub vocabulary: Option<&'a Tensor>,
    pub beams: usize,
    pub keep: usize,
    pub vocab: usize,
}

/// candidates[i] = the `keep` best (log_softmax(logits[row]) + scores[row]) over the beams'
/// rows of input i, best first and the lower index first on ties, each as (the score's
/// bits, beam * vocab + token id).
pub fn beam_candidates(rec: &mut Recorder, s: &BeamScoring) -> Result<()> {
    let view = s.logits.matrix();
    let (beams, keep) = (s.beams, s.keep);
    let fits = beam_kernel_fits(beams, keep, view.cols)
        && view.rows.is_multiple_of(beams)
        && s.vocabulary.is_none_or(|v| v.len() == view.cols)
        && (s.vocabulary.is_some() || view.cols == s.vocab)
        && (beams * s.vocab) <= u32::MAX as usize;
    let inputs = view.rows / beams.max(1);
    if !fits || s.scores.len() != view.rows || s.candidates.len() != 2 * inputs * keep {
        return Err(Error::shape(
            "beam_candidates",
            format!(
                "logits of whole inputs of 1 to {MAX_BEAMS} beams, one score per row, and 1 to {MAX_BEAM_CANDIDATES} candidates per input (at most beams x columns), 2 u32 each"
            ),
            format!(
                "logits {:?}, {beams} beams, {} scores, {keep} candidates in {} u32",
                s.logits.shape,
                s.scores.len(),
                s.candidates.len()
            ),
        ));
    }
    let params = BeamParams {
        inputs: inputs as u32,
        beams: beams as u32,
        cols: view.cols as u32,
        keep: keep as u32,
        vocab: s.vocab as u32,
        mapped: u32::from(s.vocabulary.is_some()),
        _pad0: 0,
        _pad1: 0,
    };
    let placeholder = rec.gpu().placeholder.clone();
    rec.dispatch(
        &BEAM,
        &params,
        &[
            &s.logits.buffer,
            &s.scores.buffer,
            &s.candidates.buffer,
            s.vocabulary.map_or(&placeholder, |v| &v.buffer),
        ],
        [inputs as u32, 1, 1],
    )
}
