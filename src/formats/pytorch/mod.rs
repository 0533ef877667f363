//! PyTorch checkpoints (`pytorch_model.bin` and its shards): a zip archive, as `torch.save`
//! writes it, holding `<name>/data.pkl` (the state dict, pickled) and one uncompressed entry
//! per storage (`<name>/data/<key>`). The pickle is read without running anything (see
//! `pickle`): only a dict of tensors built by `torch._utils._rebuild_tensor_v2` over f32,
//! f16 or bf16 storages is accepted, and any other global is refused by name.

mod pickle;

use std::collections::HashMap;
use std::io::Cursor;
use std::ops::Range;

use pickle::{Globals, Object, Value};

use super::tensors::{FloatKind, TensorSource, shaped};
use crate::error::{Error, Result};

/// Where one tensor's values lie in its file.
#[derive(Debug)]
struct Stored {
    /// `None` for storages of other element types, refused when read.
    kind: Result<FloatKind, String>,
    shape: Vec<usize>,
    bytes: Range<usize>,
}

struct Shard {
    file: String,
    bytes: Vec<u8>,
    tensors: HashMap<String, Stored>,
}

pub struct PytorchCheckpoint {
    shards: Vec<Shard>,
    /// Tensor name -> index of the shard that holds it.
    location: HashMap<String, usize>,
}

/// The globals a state dict's pickle applies.
struct StateDictGlobals;

impl Globals for StateDictGlobals {
    fn apply(&self, module: &str, name: &str, args: Vec<Value>) -> Result<Value, String> {
        match (module, name) {
            ("collections", "OrderedDict") if args.is_empty() => Ok(Value::Dict(Vec::new())),
            ("torch._utils", "_rebuild_tensor_v2") => Ok(Value::Object(Box::new(Object {
                module: module.into(),
                name: name.into(),
                args,
            }))),
            // A Parameter wraps its tensor: (tensor, requires_grad, backward_hooks).
            ("torch._utils", "_rebuild_parameter") => args
                .into_iter()
                .next()
                .ok_or_else(|| "_rebuild_parameter without a tensor".into()),
            _ => Err(format!(
                "the pickle calls {module}.{name}, which a state dict of tensors never needs"
            )),
        }
    }
}

fn storage_kind(class: &Value) -> Result<Result<FloatKind, String>, String> {
    let Value::Global(module, name) = class else {
        return Err("a storage without its type".into());
    };
    if module != "torch" {
        return Err(format!("a storage of type {module}.{name}"));
    }
    Ok(match name.as_str() {
        "FloatStorage" => Ok(FloatKind::F32),
        "HalfStorage" => Ok(FloatKind::F16),
        "BFloat16Storage" => Ok(FloatKind::BF16),
        other => Err(other.trim_end_matches("Storage").to_string()),
    })
}

fn usizes(value: &Value, what: &str) -> Result<Vec<usize>, String> {
    value
        .as_seq()
        .ok_or_else(|| format!("{what} is not a tuple"))?
        .iter()
        .map(|v| {
            v.as_int()
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| format!("{what} holds {v:?}"))
        })
        .collect()
}

/// A storage's (key, kind, elements) from its persistent id
/// `('storage', <class>, key, location, numel)`.
fn storage(id: &Value) -> Result<(String, Result<FloatKind, String>, usize), String> {
    let Value::Persistent(id) = id else {
        return Err("a tensor whose storage is not a persistent reference".into());
    };
    match id.as_seq() {
        Some([tag, class, key, _location, numel]) if tag.as_str() == Some("storage") => Ok((
            key.as_str()
                .ok_or("a storage key that is not a string")?
                .to_string(),
            storage_kind(class)?,
            numel
                .as_int()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or("a storage size that is not a count")?,
        )),
        _ => Err(format!("an unknown persistent id {id:?}")),
    }
}

/// A tensor's storage key, kind, byte range within its storage, and shape.
struct TensorRef {
    key: String,
    kind: Result<FloatKind, String>,
    elements: Range<usize>,
    storage_elements: usize,
    shape: Vec<usize>,
}

fn tensor(name: &str, value: &Value) -> Result<TensorRef, String> {
    let Value::Object(object) = value else {
        return Err(format!("\"{name}\" is not a tensor"));
    };
    let [storage_id, offset, size, stride, ..] = object.args.as_slice() else {
        return Err(format!(
            "\"{name}\": a tensor rebuilt from too few arguments"
        ));
    };
    let (key, kind, storage_elements) =
        storage(storage_id).map_err(|e| format!("\"{name}\": {e}"))?;
    let offset = offset
        .as_int()
        .and_then(|o| usize::try_from(o).ok())
        .ok_or_else(|| format!("\"{name}\": a storage offset that is not a count"))?;
    let shape = usizes(size, "a tensor's size")?;
    let stride = usizes(stride, "a tensor's stride")?;
    // Row-major with no gaps: what save_pretrained writes (dimensions of size 1 may carry any
    // stride).
    let mut expected = 1usize;
    for (&dim, &step) in shape.iter().zip(&stride).rev() {
        if dim != 1 && step != expected {
            return Err(format!(
                "\"{name}\" is not stored contiguously (size {shape:?}, stride {stride:?})"
            ));
        }
        expected = expected.saturating_mul(dim);
    }
    if shape.len() != stride.len() {
        return Err(format!(
            "\"{name}\": size {shape:?} and stride {stride:?} differ in rank"
        ));
    }
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("\"{name}\": size {shape:?} overflows"))?;
    let end = offset
        .checked_add(count)
        .filter(|&end| end <= storage_elements)
        .ok_or_else(|| {
            format!("\"{name}\": elements {offset}..{offset}+{count} lie outside its storage of {storage_elements}")
        })?;
    Ok(TensorRef {
        key,
        kind,
        elements: offset..end,
        storage_elements,
        shape,
    })
}

/// The uncompressed entries of the archive, by name, as byte ranges of the file.
fn entries(file: &str, bytes: &[u8]) -> Result<HashMap<String, Range<usize>>> {
    let bad = |message: String| Error::format(file, message);
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| bad(format!("not a PyTorch zip archive: {e}")))?;
    let mut found = HashMap::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| bad(format!("zip entry {index}: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| bad(format!("zip entry {index}: {e}")))?
            .to_string();
        if entry.compression() != zip::CompressionMethod::Stored {
            return Err(bad(format!(
                "{name} is compressed; torch.save stores entries uncompressed"
            )));
        }
        let start = entry
            .data_start()
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(|| bad(format!("{name} has no data offset")))?;
        let range = usize::try_from(entry.size())
            .ok()
            .and_then(|size| start.checked_add(size))
            .filter(|&end| end <= bytes.len())
            .map(|end| start..end)
            .ok_or_else(|| bad(format!("{name} reaches past the end of the file")))?;
        found.insert(name, range);
    }
    Ok(found)
}

fn parse(file: &str, bytes: Vec<u8>) -> Result<Shard> {
    let bad = |message: String| Error::format(file, message);
    let entries = entries(file, &bytes)?;
    let mut pickles = entries
        .keys()
        .filter(|n| n.ends_with("/data.pkl") || *n == "data.pkl");
    let (Some(pickle_name), None) = (pickles.next(), pickles.next()) else {
        return Err(bad(
            "no single data.pkl (the state dict) in the archive".into()
        ));
    };
    let prefix = pickle_name.trim_end_matches("data.pkl");
    let state =
        pickle::load(&bytes[entries[pickle_name].clone()], &StateDictGlobals).map_err(bad)?;
    let Value::Dict(items) = state else {
        return Err(bad("the pickle holds no dict of tensors".into()));
    };
    let mut tensors = HashMap::new();
    for (key, value) in &items {
        let name = key
            .as_str()
            .ok_or_else(|| bad(format!("a state dict key that is not a name: {key:?}")))?;
        let t = tensor(name, value).map_err(bad)?;
        let entry = format!("{prefix}data/{}", t.key);
        let storage = entries.get(&entry).ok_or_else(|| {
            bad(format!(
                "\"{name}\": its storage {entry} is not in the archive"
            ))
        })?;
        let element = t.kind.as_ref().map_or(1, |k| k.size());
        if storage.len() < t.storage_elements.saturating_mul(element) {
            return Err(bad(format!(
                "\"{name}\": storage {entry} holds {} bytes, fewer than its {} elements",
                storage.len(),
                t.storage_elements
            )));
        }
        let start = storage.start + t.elements.start * element;
        let end = storage.start + t.elements.end * element;
        tensors.insert(
            name.to_string(),
            Stored {
                kind: t.kind,
                shape: t.shape,
                bytes: start..end,
            },
        );
    }
    Ok(Shard {
        file: file.to_string(),
        bytes,
        tensors,
    })
}

impl PytorchCheckpoint {
    /// `shards` are (file name, contents).
    pub fn from_shards(shards: Vec<(String, Vec<u8>)>) -> Result<PytorchCheckpoint> {
        let mut parsed = Vec::with_capacity(shards.len());
        let mut location = HashMap::new();
        for (index, (file, bytes)) in shards.into_iter().enumerate() {
            let shard = parse(&file, bytes)?;
            location.extend(shard.tensors.keys().map(|name| (name.clone(), index)));
            parsed.push(shard);
        }
        Ok(PytorchCheckpoint {
            shards: parsed,
            location,
        })
    }

    fn find(&self, name: &str) -> Result<(&Shard, &Stored)> {
        self.location
            .get(name)
            .and_then(|&i| Some((&self.shards[i], self.shards[i].tensors.get(name)?)))
            .ok_or_else(|| Error::MissingTensor {
                file: self.files(),
                name: name.to_string(),
            })
    }
}

impl TensorSource for PytorchCheckpoint {
    fn files(&self) -> String {
        self.shards
            .iter()
            .map(|s| s.file.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn contains(&self, name: &str) -> bool {
        self.location.contains_key(name)
    }

    fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.find(name)?.1.shape.clone())
    }

    fn tensor_shaped(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let (shard, stored) = self.find(name)?;
        let kind = stored.kind.clone().map_err(|dtype| {
            Error::format(
                &shard.file,
                format!("tensor \"{name}\" has dtype {dtype}; only Float, Half and BFloat16 are supported"),
            )
        })?;
        let values = kind.to_f32(&shard.bytes[stored.bytes.clone()]);
        shaped(&shard.file, name, values, &stored.shape, expected)
    }
}

#[cfg(test)]
mod tests;
