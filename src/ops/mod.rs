//! Typed operations: each checks shapes and records one kernel dispatch.

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

pub use crate::gpu::shaders::MatmulForm;
pub use activation::{Activation, activation, add, gated};
pub use argmax::argmax;
pub use attention::{Attention, PositionBias, attention};
pub use embedding::{Positions, embedding};
pub use gather::gather_rows;
pub use matmul::{Epilogue, linear, linear_with};
pub use norm::{NormKind, norm};
pub use softmax::softmax;
pub use ssru::ssru;
