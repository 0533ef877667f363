//! GPU tensors: a row-major array in a storage buffer, strided views into one, and the
//! workspace that lends a generation its work tensors from the pool.

use std::sync::Arc;

use super::context::Gpu;
use crate::error::{Error, Result};

/// How a tensor's elements are stored in its buffer.
#[derive(Clone, Debug)]
pub enum Encoding {
    /// 4-byte elements: f32, or u32 for token ids.
    F32,
    /// f16 weights, two per u32 (element i in the low half of word i / 2 when i is even).
    F16,
    /// int8 weights, four per u32 (element i in byte i % 4 of word i / 4), with one f32
    /// scale per row in `scales`: value = q * scales[row].
    Int8 { scales: wgpu::Buffer },
}

/// A row-major array in a storage buffer.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub buffer: wgpu::Buffer,
    pub shape: Vec<usize>,
    pub encoding: Encoding,
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tensor as a matrix: leading dimensions folded into rows.
    pub fn matrix(&self) -> View<'_> {
        let cols = *self.shape.last().unwrap_or(&1);
        let rows = self.len().checked_div(cols).unwrap_or(0);
        View {
            tensor: self,
            offset: 0,
            rows,
            cols,
            stride: cols,
        }
    }

    pub fn upload_f32(gpu: &Gpu, label: &str, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        check_len(label, data.len(), shape)?;
        Ok(Tensor {
            buffer: gpu.upload(label, data)?,
            shape: shape.to_vec(),
            encoding: Encoding::F32,
        })
    }

    pub fn upload_u32(gpu: &Gpu, label: &str, data: &[u32], shape: &[usize]) -> Result<Tensor> {
        check_len(label, data.len(), shape)?;
        Ok(Tensor {
            buffer: gpu.upload(label, data)?,
            shape: shape.to_vec(),
            encoding: Encoding::F32,
        })
    }

    pub async fn to_f32(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        gpu.read(&self.buffer, self.len()).await
    }

    pub async fn to_u32(&self, gpu: &Gpu) -> Result<Vec<u32>> {
        gpu.read(&self.buffer, self.len()).await
    }
}

/// A matrix (or table) kept as blocks of consecutive rows, each in a buffer of its own, so
/// that a tensor larger than the device's binding limit is still bound a block at a time:
/// ops that read weights loop over the blocks. Most tensors are one block.
#[derive(Clone, Debug)]
pub struct RowBlocks {
    /// The whole tensor's shape.
    pub shape: Vec<usize>,
    /// The blocks in row order; each has the shape of its rows.
    pub parts: Vec<Tensor>,
}

impl RowBlocks {
    pub fn one(tensor: Tensor) -> RowBlocks {
        RowBlocks {
            shape: tensor.shape.clone(),
            parts: vec![tensor],
        }
    }

    /// Each block with the index of its first row.
    pub fn blocks(&self) -> impl Iterator<Item = (usize, &Tensor)> {
        self.parts.iter().scan(0, |first, part| {
            let at = *first;
            *first += part.shape.first().copied().unwrap_or(1);
            Some((at, part))
        })
    }

    /// The tensor, where it is one block.
    pub fn single(&self) -> Option<&Tensor> {
        match &self.parts[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    pub fn encoding(&self) -> &Encoding {
        &self.parts[0].encoding
    }

    /// The values of every block, in order (tests and diagnostics).
    pub async fn to_f32(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let mut values = Vec::new();
        for part in &self.parts {
            values.extend(part.to_f32(gpu).await?);
        }
        Ok(values)
    }
}

pub(super) fn check_len(label: &str, len: usize, shape: &[usize]) -> Result<()> {
    if shape.iter().product::<usize>() != len {
        return Err(Error::shape(
            "upload",
            format!(
                "{} elements for {label} of shape {shape:?}",
                shape.iter().product::<usize>()
            ),
            format!("{len} elements"),
        ));
    }
    Ok(())
}

/// A strided matrix inside a tensor: `rows` rows of `cols` elements, `stride` apart,
/// starting `offset` elements in. Lets ops read a column slice of a fused projection.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub tensor: &'a Tensor,
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

impl<'a> View<'a> {
    /// Columns `start..start + cols` of every row.
    pub fn columns(self, start: usize, cols: usize) -> View<'a> {
        View {
            offset: self.offset + start,
            cols,
            ..self
        }
    }

    /// Errors (naming `op`) unless every element of the view lies inside the tensor.
    pub fn check(&self, op: &'static str) -> Result<()> {
        let end = if self.rows == 0 || self.cols == 0 {
            self.offset
        } else {
            self.offset + (self.rows - 1) * self.stride + self.cols
        };
        let rows_overlap = self.rows > 1 && self.cols > self.stride;
        if rows_overlap || end > self.tensor.len() {
            return Err(Error::shape(
                op,
                format!(
                    "a view of non-overlapping rows inside a tensor of shape {:?}",
                    self.tensor.shape
                ),
                format!(
                    "a view of {}x{} (offset {}, stride {})",
                    self.rows, self.cols, self.offset, self.stride
                ),
            ));
        }
        Ok(())
    }
}

/// Work tensors of one generation, taken from the pool and given back when dropped.
pub struct Workspace {
    gpu: Arc<Gpu>,
    held: Vec<wgpu::Buffer>,
}

impl Workspace {
    pub fn new(gpu: Arc<Gpu>) -> Self {
        Workspace {
            gpu,
            held: Vec::new(),
        }
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    pub fn tensor(&mut self, shape: &[usize]) -> Result<Tensor> {
        let bytes = shape
            .iter()
            .try_fold(4u64, |bytes, &d| bytes.checked_mul(d as u64))
            .ok_or_else(|| {
                Error::invalid(format!("a work buffer of shape {shape:?} is too large"))
            })?;
        let buffer = self.gpu.pool.take(bytes)?;
        self.held.push(buffer.clone());
        Ok(Tensor {
            buffer,
            shape: shape.to_vec(),
            encoding: Encoding::F32,
        })
    }

    /// A u32 tensor holding `data` (token ids, bucket tables).
    pub fn upload_u32(&mut self, data: &[u32]) -> Result<Tensor> {
        let t = self.tensor(&[data.len()])?;
        self.gpu
            .queue
            .write_buffer(&t.buffer, 0, bytemuck::cast_slice(data));
        Ok(t)
    }

    /// An f32 tensor of `shape` holding `data` (tables computed on the CPU).
    pub fn upload_f32(&mut self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        check_len("work tensor", data.len(), shape)?;
        let t = self.tensor(shape)?;
        self.gpu
            .queue
            .write_buffer(&t.buffer, 0, bytemuck::cast_slice(data));
        Ok(t)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        for buffer in self.held.drain(..) {
            self.gpu.pool.give_back(buffer);
        }
    }
}
