//! Every kernel against its CPU reference on random inputs, at sizes that are not
//! multiples of the tiles: one module per op, and here the helpers they share.

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod argmax;
mod attention;
mod embedding;
mod gather;
mod kv_cache;
mod matmul;
mod norm;
mod softmax;
mod ssru;

use common::reference as cpu;
use seq2seq_gpu::gpu::Tensor;
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
