//! Fills a weight tensor block of rows by block of rows, as a loader reads them, so that no
//! whole tensor (nor the whole model) is ever staged in host memory: each block is converted
//! to the tensor's encoding and written at its place, and the queue is submitted every few
//! tens of megabytes so that wgpu releases its staging copies as loading goes.

use super::context::Gpu;
use super::tensor::{Encoding, Tensor};
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

pub struct TensorWriter<'g> {
    gpu: &'g Gpu,
    label: String,
    element: Element,
    buffer: wgpu::Buffer,
    scales: Option<wgpu::Buffer>,
    shape: Vec<usize>,
    cols: usize,
    rows_written: usize,
    /// Bytes of the buffer written so far (a multiple of 4).
    written: u64,
    /// Encoded bytes that do not yet fill a 4-byte word (wgpu writes whole words).
    carry: Vec<u8>,
}

impl<'g> TensorWriter<'g> {
    /// A tensor of `shape` (rows along the first dimension; a 1-D tensor has one element per
    /// row) to be filled in order.
    pub fn new(gpu: &'g Gpu, label: &str, element: Element, shape: &[usize]) -> Result<Self> {
        let len: u64 = shape.iter().map(|&d| d as u64).product();
        let rows = shape.first().copied().unwrap_or(1);
        let cols = shape.iter().skip(1).product::<usize>();
        if element == Element::Int8 && shape.len() != 2 {
            return Err(Error::shape(
                "int8 upload",
                format!("{label}: a 2-D shape"),
                format!("{shape:?}"),
            ));
        }
        let buffer = gpu.weight_buffer(label, len * element.bytes())?;
        let scales = match element {
            Element::Int8 => Some(gpu.weight_buffer(label, rows as u64 * 4)?),
            _ => None,
        };
        Ok(TensorWriter {
            gpu,
            label: label.to_string(),
            element,
            buffer,
            scales,
            shape: shape.to_vec(),
            cols,
            rows_written: 0,
            written: 0,
            carry: Vec::new(),
        })
    }

    fn rows_of(&self, len: usize) -> Result<usize> {
        let rows = len.checked_div(self.cols).unwrap_or(0);
        let total = self.shape.first().copied().unwrap_or(1);
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
        match self.element {
            Element::F32 => {
                self.rows_of(values.len())?;
                self.push(bytemuck::cast_slice(values), values.len());
            }
            Element::F16 => {
                self.rows_of(values.len())?;
                let bytes: Vec<u8> = values
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect();
                self.push(&bytes, values.len());
            }
            Element::Int8 => {
                let (q, scales) = quantize_rows(values, self.cols);
                self.quantized_rows(&q, &scales)?;
            }
        }
        Ok(())
    }

    /// The next rows of an int8 tensor, already quantised, with their scales.
    pub fn quantized_rows(&mut self, values: &[i8], row_scales: &[f32]) -> Result<()> {
        let rows = self.rows_of(values.len())?;
        let Some(scales) = &self.scales else {
            return Err(Error::invalid(format!(
                "{}: int8 rows for a tensor stored as {:?}",
                self.label, self.element
            )));
        };
        if row_scales.len() != rows {
            return Err(Error::shape(
                "int8 upload",
                format!("{}: one scale per row", self.label),
                format!("{} scales for {rows} rows", row_scales.len()),
            ));
        }
        let offset = self.rows_written as u64 * 4;
        self.gpu
            .write_weights(scales, offset, bytemuck::cast_slice(row_scales));
        self.push(bytemuck::cast_slice(values), values.len());
        Ok(())
    }

    fn push(&mut self, bytes: &[u8], elements: usize) {
        self.rows_written += elements.checked_div(self.cols).unwrap_or(0);
        let whole = (self.carry.len() + bytes.len()) / 4 * 4;
        if whole == 0 {
            self.carry.extend_from_slice(bytes);
            return;
        }
        let mut words = std::mem::take(&mut self.carry);
        let from_bytes = whole - words.len();
        words.extend_from_slice(&bytes[..from_bytes]);
        self.gpu.write_weights(&self.buffer, self.written, &words);
        self.written += whole as u64;
        self.carry = bytes[from_bytes..].to_vec();
    }

    /// The filled tensor; an error unless every row was written.
    pub fn finish(mut self) -> Result<Tensor> {
        let total = self.shape.first().copied().unwrap_or(1);
        if self.rows_written != total {
            return Err(Error::shape(
                "upload",
                format!("{total} rows for {} of shape {:?}", self.label, self.shape),
                format!("{} rows", self.rows_written),
            ));
        }
        if !self.carry.is_empty() {
            let mut last = std::mem::take(&mut self.carry);
            last.resize(4, 0);
            self.gpu.write_weights(&self.buffer, self.written, &last);
        }
        // Only int8 writers are made with scales.
        let encoding = match (self.element, self.scales) {
            (Element::F16, _) => Encoding::F16,
            (_, Some(scales)) => Encoding::Int8 { scales },
            (_, None) => Encoding::F32,
        };
        Ok(Tensor {
            buffer: self.buffer,
            shape: self.shape,
            encoding,
        })
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
