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
mod tests {
    use super::*;

    const REAL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/enpt/model.enpt.intgemm.alphas.bin"
    );

    fn real() -> MarianBin {
        let bytes = std::fs::read(REAL).unwrap_or_else(|e| panic!("cannot read {REAL}: {e}"));
        MarianBin::parse("model.enpt.intgemm.alphas.bin", bytes).unwrap()
    }

    fn close(a: f32, b: f64) -> bool {
        (f64::from(a) - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn real_file_layout() {
        let m = real();
        assert_eq!(m.names().count(), 195);
        assert!(m.yaml().contains("dec-cell: ssru"));
        assert!(!m.yaml().ends_with('\0'));
        assert_eq!(m.shape("Wemb").unwrap(), [32000, 256]);
        assert_eq!(m.shape("encoder_l1_ffn_W1").unwrap(), [256, 1536]);
        assert_eq!(m.shape("encoder_l1_ffn_b1").unwrap(), [1, 1536]);
        assert_eq!(m.shape("decoder_ff_logit_out_b").unwrap(), [1, 32000]);
        assert!(m.contains("decoder_l2_ffn_ffn_ln_scale"));
        assert!(!m.contains("Wemb_nonexistent"));
        let int8 = m.names().filter(|n| m.int8(n).is_ok_and(|q| q.is_some()));
        assert_eq!(int8.count(), 54);
        assert!(matches!(
            m.shape("nope"),
            Err(Error::MissingTensor { name, .. }) if name == "nope"
        ));
        let err = m.f32("special:model.yml").unwrap_err().to_string();
        assert!(err.contains("model.enpt.intgemm.alphas.bin") && err.contains("string"));
    }

    // Expected numbers come from /work/bergamot/numpy_ref.py's reader (stored order).
    #[test]
    fn real_file_values() {
        let m = real();
        let (wemb, mult) = m.int8("Wemb").unwrap().unwrap();
        assert_eq!(wemb.len(), 32000 * 256);
        assert!(close(mult, 153.830_02), "{mult}");
        assert_eq!(wemb[..5], [18, 3, 4, 6, 0]);
        assert_eq!(wemb[wemb.len() - 3..], [-1, -5, -39]);
        assert_eq!(wemb.iter().map(|&v| i64::from(v)).sum::<i64>(), -2_790_378);
        let wemb_f32 = m.f32("Wemb").unwrap();
        assert!(close(wemb_f32[0], 0.117_012_27));
        assert!(close(wemb_f32[8_191_999], -0.253_526_6));

        // Stored [out, in] row-major: the first bytes are the first output's weights.
        let (w1, mult) = m.int8("encoder_l1_ffn_W1").unwrap().unwrap();
        assert!(close(mult, 239.739_32), "{mult}");
        assert_eq!(w1[..4], [17, 11, 2, -26]);
        assert_eq!(w1[w1.len() - 2..], [-17, 10]);
        let w1_f32 = m.f32("encoder_l1_ffn_W1").unwrap();
        assert!(close(w1_f32[0], 0.070_910_357));
        assert!(close(w1_f32[3], -0.108_451_13));

        let b1 = m.f32("encoder_l1_ffn_b1").unwrap();
        assert!(m.int8("encoder_l1_ffn_b1").unwrap().is_none());
        assert_eq!(b1.len(), 1536);
        assert!(close(b1[0], -0.737_702_3) && close(b1[1535], -0.491_713_97));
        let sum: f64 = b1.iter().map(|&v| f64::from(v)).sum();
        assert!((sum - -753.501_885).abs() < 1e-3, "{sum}");

        let out_b = m.f32("decoder_ff_logit_out_b").unwrap();
        assert!(close(out_b[1], -15.324_212));
        let sum: f64 = out_b.iter().map(|&v| f64::from(v)).sum();
        assert!((sum - -50_736.944_69).abs() < 1e-2, "{sum}");

        // The output layer's activation alpha, stored both int8-coded and as f32.
        let alpha = m.f32("Wemb_QuantMultA").unwrap();
        assert!(close(alpha[0], 8.778_423), "{alpha:?}");
        assert!(close(m.f32("none_QuantMultA").unwrap()[0], 8.778_423));
    }

    // ---- a tiny synthetic file, written the way Marian's saveItems writes one ----

    struct Item {
        name: &'static str,
        type_code: u64,
        shape: Vec<i32>,
        data: Vec<u8>,
    }

    fn pad_block(mut data: Vec<u8>, fill: u8) -> Vec<u8> {
        data.resize(data.len().div_ceil(ALIGN).max(1) * ALIGN, fill);
        data
    }

    fn int8_item(name: &'static str, shape: Vec<i32>, multiplier: f32) -> Item {
        let n: i32 = shape.iter().product();
        let mut data: Vec<u8> = (0..n).map(|i| (i * 7 - 20) as i8 as u8).collect();
        data.extend(multiplier.to_le_bytes());
        // Garbage padding, like the real file's: the parser must not read it.
        let data = pad_block(data, 0xAB);
        Item {
            name,
            type_code: TYPE_INTGEMM8,
            shape,
            data,
        }
    }

    fn f32_item(name: &'static str, shape: Vec<i32>) -> Item {
        let n: i32 = shape.iter().product();
        let data = (0..n).flat_map(|i| (i as f32 * 0.5 - 1.0).to_le_bytes());
        Item {
            name,
            type_code: TYPE_F32,
            shape,
            data: pad_block(data.collect(), 0),
        }
    }

    fn str_item(name: &'static str, text: &str) -> Item {
        let mut data = text.as_bytes().to_vec();
        data.push(0);
        Item {
            name,
            type_code: TYPE_STRING,
            shape: vec![data.len() as i32],
            data,
        }
    }

    fn build(items: &[Item]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(VERSION.to_le_bytes());
        out.extend((items.len() as u64).to_le_bytes());
        for item in items {
            for field in [
                item.name.len() as u64 + 1,
                item.type_code,
                item.shape.len() as u64,
                item.data.len() as u64,
            ] {
                out.extend(field.to_le_bytes());
            }
        }
        for item in items {
            out.extend(item.name.as_bytes());
            out.push(0);
        }
        for item in items {
            out.extend(item.shape.iter().flat_map(|d| d.to_le_bytes()));
        }
        let padding = ALIGN - (out.len() + 8) % ALIGN;
        out.extend((padding as u64).to_le_bytes());
        out.resize(out.len() + padding, 0);
        for item in items {
            out.extend(&item.data);
        }
        out
    }

    fn tiny_items() -> Vec<Item> {
        vec![
            int8_item("Wemb", vec![4, 2], 10.0),
            int8_item("a_W", vec![2, 3], 0.5),
            f32_item("a_b", vec![1, 3]),
            f32_item("ln", vec![1, 2]),
            str_item("special:extra", "x"),
            str_item(YAML_NAME, "dec-cell: ssru\n"),
        ]
    }

    fn tiny() -> Vec<u8> {
        build(&tiny_items())
    }

    fn parse(bytes: Vec<u8>) -> Result<MarianBin> {
        MarianBin::parse("tiny.bin", bytes)
    }

    /// Parsing fails, and the message names the file and contains `needle`.
    fn fails(bytes: Vec<u8>, needle: &str) {
        let message = match parse(bytes) {
            Ok(_) => panic!("parsed, expected an error about {needle:?}"),
            Err(e) => e.to_string(),
        };
        assert!(message.contains("tiny.bin"), "{message}");
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }

    /// Where the u64 padding length sits: after the headers, names and shapes.
    fn shapes_end(items: &[Item]) -> usize {
        let per_item = |i: &Item| 32 + i.name.len() + 1 + 4 * i.shape.len();
        16 + items.iter().map(per_item).sum::<usize>()
    }

    fn patch_u64(bytes: &mut [u8], at: usize, value: u64) {
        bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// Offset of field `field` (0 name_len, 1 type, 2 shape_len, 3 data_len) of header `i`.
    fn header_field(i: usize, field: usize) -> usize {
        16 + 32 * i + 8 * field
    }

    #[test]
    fn tiny_round_trip() {
        let m = parse(tiny()).unwrap();
        assert_eq!(m.yaml(), "dec-cell: ssru\n");
        let names: Vec<_> = m.names().collect();
        assert_eq!(
            names,
            ["Wemb", "a_W", "a_b", "ln", "special:extra", YAML_NAME]
        );
        assert_eq!(m.shape("a_W").unwrap(), [2, 3]);
        let (values, mult) = m.int8("a_W").unwrap().unwrap();
        assert_eq!(values, [-20, -13, -6, 1, 8, 15]);
        assert_eq!(mult, 0.5);
        assert_eq!(
            m.f32("a_W").unwrap(),
            [-40.0, -26.0, -12.0, 2.0, 16.0, 30.0]
        );
        assert_eq!(m.f32("a_b").unwrap(), [-1.0, -0.5, 0.0]);
        assert_eq!(
            m.data("ln").unwrap(),
            MarianTensorData::F32(vec![-1.0, -0.5])
        );
        assert!(m.int8("special:extra").is_err());
    }

    #[test]
    fn every_truncation_fails() {
        let bytes = tiny();
        for len in 0..bytes.len() {
            assert!(
                parse(bytes[..len].to_vec()).is_err(),
                "prefix of {len} bytes parsed"
            );
        }
        fails(bytes[..210].to_vec(), "file is only 210 bytes");
    }

    #[test]
    fn bad_headers() {
        let mut bytes = tiny();
        patch_u64(&mut bytes, 0, 2);
        fails(bytes, "version 2");

        let mut bytes = tiny();
        patch_u64(&mut bytes, 8, u64::MAX);
        fails(bytes, "tensor headers do not fit");

        let mut bytes = tiny();
        patch_u64(&mut bytes, header_field(1, 0), 1 << 40);
        fails(bytes, "the name of tensor 1 needs");

        let mut bytes = tiny();
        patch_u64(&mut bytes, header_field(2, 2), u64::MAX);
        fails(bytes, "impossible length");

        let mut bytes = tiny();
        patch_u64(&mut bytes, header_field(0, 3), u64::MAX);
        fails(bytes, "data of tensor \"Wemb\"");

        let mut bytes = tiny();
        bytes.push(0);
        fails(bytes, "1 unexpected bytes");
    }

    #[test]
    fn bad_names() {
        let names_start = 16 + 32 * tiny_items().len();
        let mut bytes = tiny();
        bytes[names_start + 4] = b'x'; // the NUL after "Wemb"
        fails(bytes, "not NUL-terminated");

        let mut bytes = tiny();
        bytes[names_start] = 0xFF;
        fails(bytes, "not UTF-8");

        let mut bytes = tiny();
        bytes[names_start + 1] = 0;
        fails(bytes, "contains a NUL");

        let mut items = tiny_items();
        items[3].name = "a_b";
        fails(build(&items), "duplicate tensor \"a_b\"");
    }

    #[test]
    fn bad_shapes_and_blocks() {
        let mut items = tiny_items();
        items[2].shape = vec![1, 0];
        fails(build(&items), "non-positive dimension in shape [1, 0]");

        let mut items = tiny_items();
        items[2].shape = vec![-3];
        fails(build(&items), "non-positive");

        let mut items = tiny_items();
        items[2].shape = vec![];
        fails(build(&items), "empty shape");

        let mut items = tiny_items();
        items[2].shape = vec![i32::MAX, i32::MAX, i32::MAX];
        fails(build(&items), "overflows");

        let mut items = tiny_items();
        items[0].shape = vec![i32::MAX, 3];
        fails(build(&items), "need");

        let mut items = tiny_items();
        items[3].data.truncate(7); // 2 f32 need 8 bytes
        fails(
            build(&items),
            "2 elements need 8 bytes, but the block has 7",
        );

        let mut items = tiny_items();
        items[1].data.truncate(6 + 3); // no room for the whole multiplier
        fails(build(&items), "need 10 bytes");

        let mut items = tiny_items();
        items[3].data = vec![0; 4096];
        fails(build(&items), "at most 512 expected");

        let mut items = tiny_items();
        items[2].type_code = 0x0202;
        fails(build(&items), "unsupported type 0x0202");

        for multiplier in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let mut items = tiny_items();
            items[1] = int8_item("a_W", vec![2, 3], multiplier);
            fails(build(&items), "multiplier");
        }
    }

    #[test]
    fn bad_padding_and_yaml() {
        let mut bytes = tiny();
        patch_u64(&mut bytes, shapes_end(&tiny_items()), 3);
        fails(bytes, "padding length 3");

        let mut items = tiny_items();
        items.pop();
        fails(build(&items), "no \"special:model.yml\"");

        let mut items = tiny_items();
        items[5] = f32_item(YAML_NAME, vec![1]);
        fails(build(&items), "is not a string");

        let mut items = tiny_items();
        items[5].data[0] = 0xC3; // a truncated UTF-8 sequence
        fails(build(&items), "is not UTF-8");
    }

    #[test]
    fn unaligned_v1_files_parse() {
        // Writers from before the 256-byte alignment wrote a padding length of 0.
        let items = tiny_items();
        let mut bytes = build(&items)[..shapes_end(&items)].to_vec();
        bytes.extend(0u64.to_le_bytes());
        bytes.extend(items.iter().flat_map(|i| i.data.iter()));
        let m = parse(bytes).unwrap();
        assert_eq!(m.f32("a_b").unwrap(), [-1.0, -0.5, 0.0]);
        assert_eq!(m.yaml(), "dec-cell: ssru\n");
    }

    /// Random byte mutations must give Ok or Err, never a panic, and so must the accessors.
    #[test]
    fn random_mutations_never_panic() {
        let original = tiny();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let mut bytes = original.clone();
            let edits = 1 + next() % 4;
            for _ in 0..edits {
                // Half the edits hit the header region, where the lengths live.
                let span = if next() % 2 == 0 { 600 } else { bytes.len() };
                let at = (next() % span as u64) as usize;
                if next() % 4 == 0 && at + 8 <= bytes.len() {
                    let value = next() >> (next() % 64);
                    patch_u64(&mut bytes, at, value);
                } else {
                    bytes[at] = next() as u8;
                }
            }
            if let Ok(m) = parse(bytes) {
                let names: Vec<String> = m.names().map(str::to_string).collect();
                for name in &names {
                    let _ = (m.shape(name), m.f32(name), m.int8(name), m.data(name));
                }
                let _ = m.yaml();
            }
        }
    }
}
