//! The interface between weight files and the weight loader: named tensors as f32 values
//! (or as stored int8 with their scale), whatever file format holds them.

use crate::error::Result;

/// Where the graph's weights come from: a checkpoint, a Marian model, or generated values
/// for benchmarks.
pub trait TensorSource {
    /// The files the tensors are read from, for messages.
    fn files(&self) -> String;

    fn contains(&self, name: &str) -> bool;

    fn shape(&self, name: &str) -> Result<Vec<usize>>;

    /// The tensor's values as f32, checking that it has `expected` shape.
    fn tensor_shaped(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>>;

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
