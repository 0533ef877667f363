//! Fills a weight matrix block of rows by block of rows, as a loader reads them, so that no
//! whole tensor (nor the whole model) is ever staged in host memory: each block is converted
//! to the tensor's encoding and written at its place, and the queue is submitted every few
//! tens of megabytes so that wgpu releases its staging copies as loading goes. A matrix
//! larger than the device's binding limit is split into row blocks, each in a buffer of its
//! own ([`RowBlocks`]).

use super::context::Gpu;
use super::tensor::{Encoding, RowBlocks, Tensor, check_len};
use crate::error::{Error, Result};

/// The element encodings a writer produces (see [`Encoding`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    F32,
    F16,
    /// Per-row symmetric int8 with one f32 scale per row.
    Int8,
}

impl Element {
    fn bytes(self) -> u64 {
        match self {
            Element::F32 => 4,
            Element::F16 => 2,
            Element::Int8 => 1,
        }
    }
}

/// The buffers of one row block being filled.
struct Part {
    buffer: wgpu::Buffer,
    scales: Option<wgpu::Buffer>,
    rows: usize,
}

pub struct TensorWriter<'g> {
    gpu: &'g Gpu,
    label: String,
    element: Element,
    shape: Vec<usize>,
    cols: usize,
    /// Rows of every block but the last.
    block_rows: usize,
    done: Vec<Tensor>,
    part: Option<Part>,
    rows_written: usize,
    /// Bytes of the current block's buffer written so far (a multiple of 4).
    written: u64,
    /// Encoded bytes that do not yet fill a 4-byte word (wgpu writes whole words).
    carry: Vec<u8>,
}

impl<'g> TensorWriter<'g> {
    /// A tensor of `shape` (rows along the first dimension; a 1-D tensor has one element per
    /// row) to be filled in order, in as many row blocks as the device's limit needs.
    pub fn new(gpu: &'g Gpu, label: &str, element: Element, shape: &[usize]) -> Result<Self> {
        let rows = shape.first().copied().unwrap_or(1);
        let cols = shape.iter().skip(1).product::<usize>();
        if element == Element::Int8 && shape.len() != 2 {
            return Err(Error::shape(
                "int8 upload",
                format!("{label}: a 2-D shape"),
                format!("{shape:?}"),
            ));
        }
        // Buffers are whole vec4s (16 bytes); an int8 row also needs its 4-byte scale.
        let limit = gpu.max_buffer_bytes() / 16 * 16;
        let row_bytes = (cols as u64 * element.bytes()).max(4);
        let block_rows = (limit / row_bytes).min(rows.max(1) as u64) as usize;
        if block_rows == 0 {
            return Err(Error::AdapterLimit {
                limit: "maxStorageBufferBindingSize",
                allowed: gpu.max_buffer_bytes(),
                what: format!("one row of {label}"),
                needed: row_bytes,
            });
        }
        Self::in_blocks_of(gpu, label, element, shape, block_rows)
    }

    /// A tensor in blocks of `block_rows` rows (a bias split as its weight is).
    pub fn in_blocks_of(
        gpu: &'g Gpu,
        label: &str,
        element: Element,
        shape: &[usize],
        block_rows: usize,
    ) -> Result<Self> {
        let cols = shape.iter().skip(1).product::<usize>();
        let mut writer = TensorWriter {
            gpu,
            label: label.to_string(),
            element,
            shape: shape.to_vec(),
            cols,
            block_rows: block_rows.max(1),
            done: Vec::new(),
            part: None,
            rows_written: 0,
            written: 0,
            carry: Vec::new(),
        };
        writer.start_part()?;
        Ok(writer)
    }

    fn total_rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Opens the buffers of the next block.
    fn start_part(&mut self) -> Result<()> {
        let first = self.done.len() * self.block_rows;
        let rows = self.block_rows.min(self.total_rows() - first);
        let bytes = (rows * self.cols) as u64 * self.element.bytes();
        let buffer = self.gpu.weight_buffer(&self.label, bytes)?;
        let scales = match self.element {
            Element::Int8 => Some(self.gpu.weight_buffer(&self.label, rows as u64 * 4)?),
            _ => None,
        };
        self.part = Some(Part {
            buffer,
            scales,
            rows,
        });
        self.written = 0;
        Ok(())
    }

    /// Writes the last partial word of the current block and files it.
    fn close_part(&mut self) {
        let Some(part) = self.part.take() else {
            return;
        };
        if !self.carry.is_empty() {
            let mut last = std::mem::take(&mut self.carry);
            last.resize(4, 0);
            self.gpu.write_weights(&part.buffer, self.written, &last);
        }
        let mut shape = self.shape.clone();
        if let Some(first) = shape.first_mut() {
            *first = part.rows;
        }
        // Only int8 parts have scales.
        let encoding = match (self.element, part.scales) {
            (Element::F16, _) => Encoding::F16,
            (_, Some(scales)) => Encoding::Int8 { scales },
            (_, None) => Encoding::F32,
        };
        self.done.push(Tensor {
            buffer: part.buffer,
            shape,
            encoding,
        });
    }

    fn rows_of(&self, len: usize) -> Result<usize> {
        let rows = len.checked_div(self.cols).unwrap_or(0);
        let total = self.total_rows();
        if rows * self.cols != len || self.rows_written + rows > total {
            return Err(Error::shape(
                "upload",
                format!(
                    "whole rows of {} elements, at most {} more, for {} of shape {:?}",
                    self.cols,
                    total - self.rows_written,
                    self.label,
                    self.shape
                ),
                format!("{len} elements"),
            ));
        }
        Ok(rows)
    }

    /// The next rows, as f32 values (int8 tensors quantise each row to its absmax).
    pub fn rows(&mut self, values: &[f32]) -> Result<()> {
        let rows = self.rows_of(values.len())?;
        match self.element {
            Element::F32 => self.push(bytemuck::cast_slice(values), rows, None),
            Element::F16 => {
                let bytes: Vec<u8> = values
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect();
                self.push(&bytes, rows, None)
            }
            Element::Int8 => {
                let (q, scales) = quantize_rows(values, self.cols);
                self.quantized_rows(&q, &scales)
            }
        }
    }

    /// The next rows of an int8 tensor, already quantised, with their scales.
    pub fn quantized_rows(&mut self, values: &[i8], row_scales: &[f32]) -> Result<()> {
        let rows = self.rows_of(values.len())?;
        if self.element != Element::Int8 {
            return Err(Error::invalid(format!(
                "{}: int8 rows for a tensor stored as {:?}",
                self.label, self.element
            )));
        }
        if row_scales.len() != rows {
            return Err(Error::shape(
                "int8 upload",
                format!("{}: one scale per row", self.label),
                format!("{} scales for {rows} rows", row_scales.len()),
            ));
        }
        self.push(bytemuck::cast_slice(values), rows, Some(row_scales))
    }

    /// Writes `rows` encoded rows (and their scales), across block edges where they fall.
    fn push(&mut self, bytes: &[u8], rows: usize, scales: Option<&[f32]>) -> Result<()> {
        let row_bytes = bytes.len().checked_div(rows).unwrap_or(0);
        let mut row = 0;
        while row < rows {
            if self.part.is_none() {
                self.start_part()?;
            }
            let first = self.done.len() * self.block_rows;
            let Some(part) = &self.part else {
                return Err(Error::invalid("no block to write into"));
            };
            let in_part = self.rows_written - first;
            let n = (part.rows - in_part).min(rows - row);
            if let (Some(buffer), Some(scales)) = (&part.scales, scales) {
                let offset = in_part as u64 * 4;
                let piece = &scales[row..row + n];
                self.gpu
                    .write_weights(buffer, offset, bytemuck::cast_slice(piece));
            }
            let buffer = part.buffer.clone();
            let full = in_part + n == part.rows;
            self.write_words(&buffer, &bytes[row * row_bytes..(row + n) * row_bytes]);
            self.rows_written += n;
            row += n;
            if full {
                self.close_part();
            }
        }
        Ok(())
    }

    fn write_words(&mut self, buffer: &wgpu::Buffer, bytes: &[u8]) {
        let whole = (self.carry.len() + bytes.len()) / 4 * 4;
        if whole == 0 {
            self.carry.extend_from_slice(bytes);
            return;
        }
        let mut words = std::mem::take(&mut self.carry);
        let from_bytes = whole - words.len();
        words.extend_from_slice(&bytes[..from_bytes]);
        self.gpu.write_weights(buffer, self.written, &words);
        self.written += whole as u64;
        self.carry = bytes[from_bytes..].to_vec();
    }

    /// The filled matrix, in one or more row blocks; an error unless every row was written.
    pub fn finish(mut self) -> Result<RowBlocks> {
        let total = self.total_rows();
        if self.rows_written != total {
            return Err(Error::shape(
                "upload",
                format!("{total} rows for {} of shape {:?}", self.label, self.shape),
                format!("{} rows", self.rows_written),
            ));
        }
        // An empty tensor still has its (empty) block.
        self.close_part();
        Ok(RowBlocks {
            shape: self.shape,
            parts: self.done,
        })
    }

    /// The filled tensor, which must fit one buffer (norms, biases, small tables).
    pub fn finish_one(self) -> Result<Tensor> {
        let limit = self.gpu.max_buffer_bytes();
        let bytes = self.shape.iter().map(|&d| d as u64).product::<u64>() * self.element.bytes();
        let label = self.label.clone();
        let mut blocks = self.finish()?;
        match blocks.parts.len() {
            1 => Ok(blocks.parts.remove(0)),
            _ => Err(Error::AdapterLimit {
                limit: "maxStorageBufferBindingSize",
                allowed: limit,
                what: label,
                needed: bytes,
            }),
        }
    }
}

/// Whole weights in a compact encoding, written as a one-block writer writes them.
impl Tensor {
    /// f32 values stored as f16 pairs (weights that tolerate the rounding).
    pub fn upload_f16(gpu: &Gpu, label: &str, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        check_len(label, data.len(), shape)?;
        let mut writer = TensorWriter::new(gpu, label, Element::F16, shape)?;
        writer.rows(data)?;
        writer.finish_one()
    }

    /// int8 values of a [rows, cols] matrix with one scale per row (quantised weights).
    pub fn upload_int8(
        gpu: &Gpu,
        label: &str,
        values: &[i8],
        row_scales: &[f32],
        shape: &[usize],
    ) -> Result<Tensor> {
        check_len(label, values.len(), shape)?;
        let mut writer = TensorWriter::new(gpu, label, Element::Int8, shape)?;
        writer.quantized_rows(values, row_scales)?;
        writer.finish_one()
    }
}

/// Per-row symmetric int8 quantisation of a [rows, cols] matrix: (values, row scales).
pub fn quantize_rows(data: &[f32], cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut values = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(data.len() / cols.max(1));
    for row in data.chunks(cols.max(1)) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        values.extend(
            row.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(scale);
    }
    (values, scales)
}
