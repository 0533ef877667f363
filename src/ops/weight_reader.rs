//! How a kernel reads a weight table in each encoding: one WGSL reader per encoding
//! (shaders/weights_*.wgsl: `load_w`, `load_w4` and `weight_scale`, the weights at binding 3
//! and the row scales at binding 6, which only int8 reads), chosen from the tensor and the
//! adapter. The matmul and embedding kernels are each built over every reader, with the
//! same bindings for all.

use crate::gpu::Encoding;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WeightReader {
    F32,
    /// f16 packed two per u32, for adapters without `shader-f16`.
    F16Packed,
    /// The same f16 bytes read as WGSL `f16` (adapters with `shader-f16`).
    F16Native,
    /// int8 with a scale per row.
    Int8,
}

impl WeightReader {
    /// Every reader, in the order of `index`: kernels built over each keep them in this order.
    pub(crate) const ALL: [WeightReader; 4] = [
        WeightReader::F32,
        WeightReader::F16Packed,
        WeightReader::F16Native,
        WeightReader::Int8,
    ];

    /// The reader's place in [`WeightReader::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    pub(crate) const fn source(self) -> &'static str {
        match self {
            WeightReader::F32 => include_str!("../../shaders/weights_f32.wgsl"),
            WeightReader::F16Packed => include_str!("../../shaders/weights_f16.wgsl"),
            WeightReader::F16Native => include_str!("../../shaders/weights_f16_native.wgsl"),
            WeightReader::Int8 => include_str!("../../shaders/weights_i8.wgsl"),
        }
    }

    pub(crate) const fn needs_shader_f16(self) -> bool {
        matches!(self, WeightReader::F16Native)
    }

    /// The reader for a tensor of `encoding` on a device with (or without) native f16, and
    /// its row-scale buffer (int8 only: the others bind a placeholder there).
    pub(crate) fn choose(
        encoding: &Encoding,
        native_f16: bool,
    ) -> (WeightReader, Option<&wgpu::Buffer>) {
        match encoding {
            Encoding::F32 => (WeightReader::F32, None),
            Encoding::F16 if native_f16 => (WeightReader::F16Native, None),
            Encoding::F16 => (WeightReader::F16Packed, None),
            Encoding::Int8 { scales } => (WeightReader::Int8, Some(scales)),
        }
    }
}
