//! Every kernel against its CPU reference on random inputs, at sizes that are not
//! multiples of the tiles: one module per op, and here the helpers they share.

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod argmax;
mod attention;
mod beam;
mod embedding;
mod gather;
mod kv_cache;
mod matmul;
mod matvec_fused;
mod norm;
mod sample;
mod softmax;
mod ssru;

use common::reference as cpu;
use seq2seq_gpu::gpu::{RowBlocks, Tensor};
use seq2seq_gpu::ops::Activation;

type CpuActivation = fn(f32) -> f32;

/// Every activation with its CPU reference (the matmul epilogue and the element-wise kernel).
const ACTIVATIONS: [(Activation, CpuActivation); 5] = [
    (Activation::Identity, |x| x),
    (Activation::Relu, cpu::relu),
    (Activation::Gelu, cpu::gelu_erf),
    (Activation::GeluTanh, cpu::gelu_tanh),
    (Activation::Silu, cpu::silu),
];

fn upload(gpu: &seq2seq_gpu::gpu::Gpu, data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::upload_f32(gpu, "test", data, shape).unwrap()
}

fn zeros(gpu: &seq2seq_gpu::gpu::Gpu, shape: &[usize]) -> Tensor {
    upload(gpu, &vec![0.0; shape.iter().product()], shape)
}

/// A [rows, cols] table split into row blocks at `edges` (first rows of the blocks after
/// the first), each made by `part` from its rows' range, as a device with a small binding
/// limit keeps a large table.
fn row_blocks(
    shape: [usize; 2],
    edges: &[usize],
    mut part: impl FnMut(std::ops::Range<usize>) -> Tensor,
) -> RowBlocks {
    let mut starts = vec![0];
    starts.extend(edges.iter().copied().filter(|&e| e > 0 && e < shape[0]));
    starts.push(shape[0]);
    RowBlocks {
        shape: shape.to_vec(),
        parts: starts.windows(2).map(|w| part(w[0]..w[1])).collect(),
    }
}
