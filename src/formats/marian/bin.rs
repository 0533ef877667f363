//! Marian's binary model format (`*.bin`): a version, a table of tensor headers, the
//! NUL-terminated names, the `i32` shapes, a `u64` padding length with that many padding bytes,
//! then one data block per tensor in header order. Bergamot's int8 models add "intgemm8" blocks.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// The only version Marian has ever written; the 256-byte alignment came later without a bump.
const VERSION: u64 = 1;
/// "intgemm8": `nelem` int8 values, then one f32 multiplier (real value = int8 / multiplier).
const TYPE_INTGEMM8: u64 = 0x4101;
const TYPE_F32: u64 = 0x0404;
/// Marian's `int8` type, used only for UTF-8 strings such as the model's YAML.
const TYPE_STRING: u64 = 0x0101;
const YAML_NAME: &str = "special:model.yml";
/// `{name_len, type, shape_len, data_len}`, each a u64.
const HEADER_BYTES: u64 = 32;
const ALIGN: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Storage {
    Int8 { multiplier: f32 },
    F32,
    Str,
}

/// The storage type before the data block (and so an int8 tensor's multiplier) has been read.
#[derive(Clone, Copy)]
enum DType {
    Int8,
    F32,
    Str,
}

impl DType {
    fn from_code(code: u64, name: &str, file: &str) -> Result<DType> {
        match code {
            TYPE_INTGEMM8 => Ok(DType::Int8),
            TYPE_F32 => Ok(DType::F32),
            TYPE_STRING => Ok(DType::Str),
            _ => Err(Error::format(
                file,
                format!("tensor \"{name}\" has unsupported type {code:#06x}"),
            )),
        }
    }

    /// Bytes the block needs: the elements, plus the multiplier for int8.
    fn needed_bytes(self, nelem: usize) -> Option<usize> {
        match self {
            DType::Int8 => nelem.checked_add(4),
            DType::F32 => nelem.checked_mul(4),
            DType::Str => Some(nelem),
        }
    }
}

struct Tensor {
    name: String,
    storage: Storage,
    shape: Vec<usize>,
    nelem: usize,
    /// Start of the data block in the file.
    offset: usize,
}

/// One parsed Marian `.bin` file; the tensors borrow from the bytes it keeps.
pub struct MarianBin {
    file: String,
    bytes: Vec<u8>,
    tensors: Vec<Tensor>,
    index: HashMap<String, usize>,
    yaml: String,
}

/// A tensor's values: converted f32, or the stored int8 values with their multiplier.
#[derive(Debug, PartialEq)]
pub enum MarianTensorData<'a> {
    F32(Vec<f32>),
    Int8 { values: &'a [i8], multiplier: f32 },
}

/// A cursor that turns every out-of-range read into a format error.
struct Reader<'a> {
    file: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, len: u64, what: &str) -> Result<&'a [u8]> {
        let slice = usize::try_from(len)
            .ok()
            .and_then(|len| self.pos.checked_add(len))
            .and_then(|end| self.bytes.get(self.pos..end));
        let Some(slice) = slice else {
            return Err(Error::format(
                self.file,
                format!(
                    "{what} needs {len} bytes at offset {}, but the file is only {} bytes long",
                    self.pos,
                    self.bytes.len()
                ),
            ));
        };
        self.pos += slice.len();
        Ok(slice)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let bytes = self.take(8, what)?;
        Ok(u64::from_le_bytes(bytes.try_into().unwrap_or_default()))
    }
}

struct Header {
    name_len: u64,
    type_code: u64,
    shape_len: u64,
    data_len: u64,
}

impl MarianBin {
    /// `file` is the name used in error messages; `bytes` the whole file.
    pub fn parse(file: &str, bytes: Vec<u8>) -> Result<MarianBin> {
        let mut r = Reader {
            file,
            bytes: &bytes,
            pos: 0,
        };
        let version = r.u64("the version")?;
        if version != VERSION {
            return Err(Error::format(
                file,
                format!("unsupported Marian binary version {version} (only {VERSION} is known)"),
            ));
        }
        let headers = read_headers(&mut r)?;
        let names = read_names(&mut r, &headers)?;
        let dtypes = headers
            .iter()
            .zip(&names)
            .map(|(h, name)| DType::from_code(h.type_code, name, file))
            .collect::<Result<Vec<_>>>()?;
        let shapes = read_shapes(&mut r, &headers, &names)?;
        skip_alignment(&mut r)?;

        let mut tensors = Vec::with_capacity(headers.len());
        let mut index = HashMap::with_capacity(headers.len());
        for (((header, name), dtype), shape) in headers.iter().zip(names).zip(dtypes).zip(shapes) {
            let offset = r.pos;
            let data = r.take(header.data_len, &format!("data of tensor \"{name}\""))?;
            let nelem = element_count(&shape, &name, file)?;
            let storage = check_block(dtype, nelem, data, &name, file)?;
            if index.insert(name.clone(), tensors.len()).is_some() {
                return Err(Error::format(file, format!("duplicate tensor \"{name}\"")));
            }
            tensors.push(Tensor {
                name,
                storage,
                shape,
                nelem,
                offset,
            });
        }
        if r.remaining() != 0 {
            return Err(Error::format(
                file,
                format!("{} unexpected bytes after the last tensor", r.remaining()),
            ));
        }
        let yaml = read_yaml(file, &bytes, &tensors, &index)?;
        Ok(MarianBin {
            file: file.to_string(),
            bytes,
            tensors,
            index,
            yaml,
        })
    }

    /// The name the file was read under, for messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The `special:model.yml` string, without its trailing NULs.
    pub fn yaml(&self) -> &str {
        &self.yaml
    }

    /// Tensor names in file order (alphabetical in the files Marian writes).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.name.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Logical shape as stored in the header (Marian's [rows, cols]).
    ///
    /// The values ([`f32`](Self::f32), [`int8`](Self::int8)) come in stored order, which is not
    /// always this shape's row-major order: intgemm8 `*_W*` matrices state `[in, out]` but are
    /// stored `[out, in]` row-major (the transpose), while `Wemb` (`[vocab, dim]`) and all f32
    /// tensors are row-major as stated. Transposing is the caller's job.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.tensor(name)?.shape.clone())
    }

    /// Values as f32 in the stored element order (int8 divided by the multiplier).
    pub fn f32(&self, name: &str) -> Result<Vec<f32>> {
        match self.data(name)? {
            MarianTensorData::F32(values) => Ok(values),
            MarianTensorData::Int8 { values, multiplier } => {
                Ok(values.iter().map(|&v| f32::from(v) / multiplier).collect())
            }
        }
    }

    /// For int8 tensors: the raw int8 values in stored order and the multiplier
    /// (real = v / multiplier); `Ok(None)` for f32 tensors.
    pub fn int8(&self, name: &str) -> Result<Option<(&[i8], f32)>> {
        match self.data(name)? {
            MarianTensorData::Int8 { values, multiplier } => Ok(Some((values, multiplier))),
            MarianTensorData::F32(_) => Ok(None),
        }
    }

    /// The values of a numeric tensor in stored order; an error for string tensors.
    pub fn data(&self, name: &str) -> Result<MarianTensorData<'_>> {
        let tensor = self.tensor(name)?;
        match tensor.storage {
            Storage::F32 => {
                let bytes = self.block(tensor, tensor.nelem.saturating_mul(4))?;
                let values = bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Ok(MarianTensorData::F32(values))
            }
            Storage::Int8 { multiplier } => {
                let bytes = self.block(tensor, tensor.nelem)?;
                Ok(MarianTensorData::Int8 {
                    values: bytemuck::cast_slice(bytes),
                    multiplier,
                })
            }
            Storage::Str => Err(Error::format(
                &self.file,
                format!("tensor \"{name}\" is a string, not a numeric tensor"),
            )),
        }
    }

    fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.index
            .get(name)
            .and_then(|&i| self.tensors.get(i))
            .ok_or_else(|| Error::MissingTensor {
                file: self.file.clone(),
                name: name.to_string(),
            })
    }

    /// The first `len` bytes of a tensor's block (checked against the file at parse time).
    fn block(&self, tensor: &Tensor, len: usize) -> Result<&[u8]> {
        tensor
            .offset
            .checked_add(len)
            .and_then(|end| self.bytes.get(tensor.offset..end))
            .ok_or_else(|| {
                Error::format(
                    &self.file,
                    format!("tensor \"{}\" lies outside the file", tensor.name),
                )
            })
    }
}

impl std::fmt::Debug for MarianBin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarianBin")
            .field("file", &self.file)
            .field("tensors", &self.tensors.len())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

fn read_headers(r: &mut Reader) -> Result<Vec<Header>> {
    let count = r.u64("the tensor count")?;
    // Check before allocating: the count comes from the file.
    let fits = count
        .checked_mul(HEADER_BYTES)
        .is_some_and(|n| n <= r.remaining() as u64);
    if !fits {
        return Err(Error::format(
            r.file,
            format!(
                "{count} tensor headers do not fit in a {}-byte file",
                r.bytes.len()
            ),
        ));
    }
    let mut headers = Vec::with_capacity(count as usize);
    for i in 0..count {
        let what = format!("header {i}");
        headers.push(Header {
            name_len: r.u64(&what)?,
            type_code: r.u64(&what)?,
            shape_len: r.u64(&what)?,
            data_len: r.u64(&what)?,
        });
    }
    Ok(headers)
}

fn read_names(r: &mut Reader, headers: &[Header]) -> Result<Vec<String>> {
    let mut names = Vec::with_capacity(headers.len());
    for (i, header) in headers.iter().enumerate() {
        let raw = r.take(header.name_len, &format!("the name of tensor {i}"))?;
        names.push(parse_name(raw, i, r.file)?);
    }
    Ok(names)
}

fn parse_name(raw: &[u8], i: usize, file: &str) -> Result<String> {
    let bad = |problem: &str| Error::format(file, format!("the name of tensor {i} {problem}"));
    let Some((&0, text)) = raw.split_last() else {
        return Err(bad("is not NUL-terminated"));
    };
    if text.is_empty() {
        return Err(bad("is empty"));
    }
    if text.contains(&0) {
        return Err(bad("contains a NUL byte"));
    }
    let text = std::str::from_utf8(text).map_err(|_| bad("is not UTF-8"))?;
    Ok(text.to_string())
}

fn read_shapes(r: &mut Reader, headers: &[Header], names: &[String]) -> Result<Vec<Vec<usize>>> {
    let mut shapes = Vec::with_capacity(headers.len());
    for (header, name) in headers.iter().zip(names) {
        let what = format!("the shape of tensor \"{name}\"");
        let len = header.shape_len.checked_mul(4).ok_or_else(|| {
            Error::format(
                r.file,
                format!("{what} has an impossible length {}", header.shape_len),
            )
        })?;
        let raw = r.take(len, &what)?;
        shapes.push(parse_shape(raw, name, r.file)?);
    }
    Ok(shapes)
}

fn parse_shape(raw: &[u8], name: &str, file: &str) -> Result<Vec<usize>> {
    let dims: Vec<i32> = raw
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if dims.is_empty() {
        return Err(Error::format(
            file,
            format!("tensor \"{name}\" has an empty shape"),
        ));
    }
    dims.iter()
        .map(|&d| {
            usize::try_from(d).ok().filter(|&d| d > 0).ok_or_else(|| {
                Error::format(
                    file,
                    format!("tensor \"{name}\" has a non-positive dimension in shape {dims:?}"),
                )
            })
        })
        .collect()
}

fn element_count(shape: &[usize], name: &str, file: &str) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            Error::format(
                file,
                format!("the shape {shape:?} of tensor \"{name}\" overflows"),
            )
        })
}

/// Marian writes a u64 padding length, then that many bytes, so that the data starts on a
/// 256-byte boundary (always skipping at least 1 byte); writers from before the alignment wrote 0.
fn skip_alignment(r: &mut Reader) -> Result<()> {
    let padding = r.u64("the padding length")?;
    let aligned = (ALIGN - r.pos % ALIGN) as u64;
    if padding != 0 && padding != aligned {
        return Err(Error::format(
            r.file,
            format!(
                "padding length {padding} at offset {} should be {aligned} (or 0)",
                r.pos - 8
            ),
        ));
    }
    r.take(padding, "the padding before the data")?;
    Ok(())
}

/// Checks a data block against its shape and returns how to read it.
fn check_block(dtype: DType, nelem: usize, data: &[u8], name: &str, file: &str) -> Result<Storage> {
    let bad = |problem: String| Error::format(file, format!("tensor \"{name}\": {problem}"));
    let needed = dtype
        .needed_bytes(nelem)
        .ok_or_else(|| bad(format!("{nelem} elements overflow")))?;
    if data.len() < needed {
        return Err(bad(format!(
            "{nelem} elements need {needed} bytes, but the block has {}",
            data.len()
        )));
    }
    // Marian pads each block to 256 bytes and intgemm8 reserves 256 more for the multiplier;
    // anything beyond that means the shape and the block length disagree.
    let most = needed
        .div_ceil(ALIGN)
        .saturating_add(1)
        .saturating_mul(ALIGN);
    if data.len() > most {
        return Err(bad(format!(
            "{nelem} elements need {needed} bytes, but the block has {} (at most {most} expected)",
            data.len()
        )));
    }
    match dtype {
        DType::F32 => Ok(Storage::F32),
        DType::Str => Ok(Storage::Str),
        DType::Int8 => {
            let multiplier = data
                .get(nelem..needed)
                .and_then(|b| b.try_into().ok())
                .map(f32::from_le_bytes)
                .ok_or_else(|| bad("no room for the multiplier".to_string()))?;
            if !(multiplier.is_finite() && multiplier > 0.0) {
                return Err(bad(format!(
                    "int8 multiplier {multiplier} is not a positive number"
                )));
            }
            Ok(Storage::Int8 { multiplier })
        }
    }
}

fn read_yaml(
    file: &str,
    bytes: &[u8],
    tensors: &[Tensor],
    index: &HashMap<String, usize>,
) -> Result<String> {
    let tensor = index
        .get(YAML_NAME)
        .and_then(|&i| tensors.get(i))
        .ok_or_else(|| {
            Error::format(
                file,
                format!("no \"{YAML_NAME}\" string (not a Marian model?)"),
            )
        })?;
    let bad = |problem: &str| Error::format(file, format!("\"{YAML_NAME}\" {problem}"));
    if tensor.storage != Storage::Str {
        return Err(bad("is not a string"));
    }
    let raw = tensor
        .offset
        .checked_add(tensor.nelem)
        .and_then(|end| bytes.get(tensor.offset..end))
        .ok_or_else(|| bad("lies outside the file"))?;
    let text = std::str::from_utf8(raw).map_err(|_| bad("is not UTF-8"))?;
    Ok(text.trim_end_matches('\0').to_string())
}

#[cfg(test)]
mod tests;
