//! Typed operations: each checks its operands' shapes and records one kernel dispatch. Each
//! op's file owns its kernels (module, entry points, bindings, uniform struct, kernel choice);
//! [`all_kernels`] gathers them from one table.

pub mod activation;
pub mod argmax;
pub mod attention;
pub mod embedding;
pub mod gather;
pub mod kv_cache;
pub mod matmul;
pub mod norm;
pub mod softmax;
pub mod ssru;

pub use activation::{Activation, activation, add, gated};
pub use argmax::argmax;
pub use attention::{Attention, PositionBias, attention};
pub use embedding::{Positions, embedding};
pub use gather::gather_rows;
pub use matmul::{Epilogue, MatmulForm, linear, linear_with};
pub use norm::{NormKind, norm};
pub use softmax::softmax;
pub use ssru::ssru;

use crate::gpu::Kernel;

/// Workgroup reductions, shared by the row kernels (norms, softmax, argmax).
const REDUCE_WGSL: &str = include_str!("../../shaders/reduce.wgsl");

/// Every kernel of every op: tests build each one's pipeline and hold its bindings and
/// uniform struct against the WGSL, so a kernel left out of this table is a test failure.
pub fn all_kernels() -> Vec<Kernel> {
    let tables: [&[Kernel]; 9] = [
        activation::KERNELS,
        argmax::KERNELS,
        attention::KERNELS,
        embedding::KERNELS,
        gather::KERNELS,
        kv_cache::KERNELS,
        norm::KERNELS,
        softmax::KERNELS,
        ssru::KERNELS,
    ];
    let mut kernels: Vec<Kernel> = tables.concat();
    kernels.extend(matmul::kernels());
    kernels
}
