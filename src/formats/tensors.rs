//! The interface between weight files and the weight loader: named tensors as f32 values
//! (or as stored int8 with their scale), whatever file format holds them.

use std::future::Future;
use std::ops::Range;

use crate::error::Result;

/// Where the graph's weights come from: a checkpoint, a Marian model, or generated values
/// for benchmarks. Values are read asynchronously and a block of rows at a time, so that a
/// checkpoint streams from its files (a download, in the browser) without being held whole.
pub trait TensorSource {
    /// The files the tensors are read from, for messages.
    fn files(&self) -> String;

    fn contains(&self, name: &str) -> bool;

    fn shape(&self, name: &str) -> Result<Vec<usize>>;

    /// Rows `rows` (along the first dimension; a vector has one value per row) of the
    /// tensor's values as f32, checking that it has `expected` shape.
    fn rows(
        &self,
        name: &str,
        expected: &[usize],
        rows: Range<usize>,
    ) -> impl Future<Output = Result<Vec<f32>>>;

    /// The whole tensor's values as f32, checking that it has `expected` shape.
    fn tensor_shaped(
        &self,
        name: &str,
        expected: &[usize],
    ) -> impl Future<Output = Result<Vec<f32>>> {
        self.rows(name, expected, 0..expected.first().copied().unwrap_or(1))
    }

    /// A weight the source stores as int8, with the scale that turns it back into real values
    /// (value = q * scale, one scale for the whole tensor), checking that it has `expected`
    /// shape. `None` where the tensor is stored in floating point.
    fn quantized(&self, name: &str, expected: &[usize]) -> Result<Option<(Vec<i8>, f32)>> {
        let _ = (name, expected);
        Ok(None)
    }

    /// The first of `names` that the source holds.
    fn first_of<'n>(&self, names: &[&'n str]) -> Option<&'n str> {
        names.iter().copied().find(|n| self.contains(n))
    }
}

/// Where one tensor's values lie in its file.
#[derive(Clone, Debug)]
pub struct StoredTensor {
    /// The dtype's name where the engine cannot convert it (refused when read).
    pub kind: Result<FloatKind, String>,
    pub shape: Vec<usize>,
    /// Bytes of the file, row-major and contiguous.
    pub bytes: Range<u64>,
}

/// The floating-point encodings checkpoints store weights in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatKind {
    F32,
    F16,
    BF16,
}

impl FloatKind {
    pub fn size(self) -> usize {
        match self {
            FloatKind::F32 => 4,
            FloatKind::F16 | FloatKind::BF16 => 2,
        }
    }

    /// Little-endian values of this kind as f32 (a trailing partial value is ignored).
    pub fn to_f32(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            FloatKind::F32 => {
                bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[..bytes.len() - bytes.len() % 4])
            }
            FloatKind::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            FloatKind::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        }
    }
}
