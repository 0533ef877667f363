//! Every kernel against its CPU reference on random inputs, at sizes that are not
//! multiples of the tiles: one module per op, and here the helpers they share.

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod argmax;
mod attention;
mod attention_query;
mod attention_windows;
mod beam;
mod embedding;
mod gather;
mod kv_cache;
mod matmul;
mod matvec_fused;
mod norm;
mod paged;
mod rotary;
mod sample;
mod softmax;
mod ssru;

use common::reference as cpu;
use seq2seq_gpu::gpu::{Gpu, RowBlocks, Tensor};
use seq2seq_gpu::ops::{Activation, Norm, NormKind};

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

/// A weight [n, k] in one encoding, and the f32 values the kernel computes with.
pub(crate) fn weight(
    gpu: &Gpu,
    encoding: &str,
    w: &[f32],
    n: usize,
    k: usize,
) -> (Tensor, Vec<f32>) {
    match encoding {
        "f32" => (upload(gpu, w, &[n, k]), w.to_vec()),
        "f16" => {
            let t = Tensor::upload_f16(gpu, "w", w, &[n, k]).unwrap();
            let rounded = w.iter().map(|v| half::f16::from_f32(*v).to_f32());
            (t, rounded.collect())
        }
        _ => {
            let q: Vec<i8> = w.iter().map(|v| (v * 127.0).round() as i8).collect();
            let scales: Vec<f32> = (0..n).map(|r| 0.01 + r as f32 * 1e-3).collect();
            let t = Tensor::upload_int8(gpu, "w", &q, &scales, &[n, k]).unwrap();
            let values = q.iter().enumerate().map(|(i, &v)| v as f32 * scales[i / k]);
            (t, values.collect())
        }
    }
}

/// A norm of `kind` (`beta` is LayerNorm's bias; RMSNorm takes none).
pub(crate) fn norm(gpu: &Gpu, kind: NormKind, gamma: &[f32], beta: &[f32], eps: f32) -> Norm {
    let bias = (kind == NormKind::LayerNorm).then_some(beta);
    Norm::upload(gpu, kind, gamma, bias, eps).unwrap()
}
