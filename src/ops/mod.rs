//! Typed operations: each checks its operands' shapes and records one kernel dispatch. Each
//! op's file owns its kernels (module, entry points, bindings, uniform struct, kernel choice);
//! [`all_kernels`] lists them from one table.

pub mod activation;
pub mod argmax;
pub mod attention;
mod attention_modules;
mod attention_query;
pub mod beam;
pub mod embedding;
pub mod gather;
pub mod kv_cache;
pub mod matmul;
pub mod matvec_fused;
pub mod norm;
pub mod rotary;
pub mod sample;
pub mod softmax;
pub mod ssru;
mod weight_reader;

pub use crate::model::spec::{Activation, NormKind};
pub use activation::{activation, add, gated};
pub use argmax::{argmax, argmax_partials};
pub use attention::{
    Attention, AttentionForm, KeySplit, PositionBias, Query, QueryProjection, attention,
    attention_with, key_splits, split_records_len,
};
pub use beam::{BeamScoring, beam_candidates, beam_kernel_fits};
pub use embedding::{Positions, embedding};
pub use gather::gather_rows;
pub use matmul::{Epilogue, MatmulForm, linear, linear_blocks, linear_with};
pub use matvec_fused::{
    CacheAppend, Fusion, Residual, argmax_partials_shape, fusable, linear_fused,
};
pub use norm::{Norm, norm, norm_add};
pub use rotary::{Rotary, RotaryAppend, rotary, rotary_table};
pub use sample::{Sampling, sample};
pub use softmax::softmax;
pub use ssru::ssru;

use crate::gpu::Kernel;

/// Workgroup reductions, shared by the row kernels (norms, softmax, argmax, sampling).
const REDUCE_WGSL: &str = include_str!("../../shaders/reduce.wgsl");

/// The radix descent to a cut-off among a workgroup's values (sampling, beam candidates).
const RADIX_CUTOFF_WGSL: &str = include_str!("../../shaders/radix_cutoff.wgsl");

/// Every op's kernels, the one table of them: tests build each one's pipeline and hold its
/// bindings and uniform struct against the WGSL, and every entry point of a module and every
/// shader file must appear here, so a kernel left out is a test failure.
const EVERY_OP: [&[Kernel]; 14] = [
    activation::KERNELS,
    argmax::KERNELS,
    attention_modules::KERNELS,
    beam::KERNELS,
    embedding::KERNELS,
    gather::KERNELS,
    kv_cache::KERNELS,
    matmul::KERNELS,
    matvec_fused::KERNELS,
    norm::KERNELS,
    rotary::KERNELS,
    sample::KERNELS,
    softmax::KERNELS,
    ssru::KERNELS,
];

pub fn all_kernels() -> Vec<Kernel> {
    EVERY_OP.concat()
}
