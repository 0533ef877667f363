//! PyTorch checkpoints (`pytorch_model.bin` and its shards): a zip archive, as `torch.save`
//! writes it, holding `<name>/data.pkl` (the state dict, pickled) and one uncompressed entry
//! per storage (`<name>/data/<key>`). Only the archive's directory, the pickle and the local
//! headers of the storages it names are read here; tensors are read later, by byte range.
//! The pickle is read without running anything (see `pickle`): only a dict of tensors built
//! by `torch._utils._rebuild_tensor_v2` over f32, f16 or bf16 storages is accepted, and any
//! other global is refused by name.

mod fetched;
mod pickle;

use std::collections::HashMap;
use std::ops::Range;

use fetched::Fetched;
use pickle::{Globals, Object, Value};

use super::source::FileSource;
use super::tensors::{FloatKind, StoredTensor};
use crate::error::{Error, Result};

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

/// An uncompressed entry of the archive: where its local header starts, and its size.
struct Entry {
    header: u64,
    size: u64,
}

/// The archive's entries by name, from its central directory.
async fn entries(
    source: &impl FileSource,
    file: &str,
    size: u64,
) -> Result<HashMap<String, Entry>> {
    let bad = |message: String| Error::format(file, message);
    let mut fetched = Fetched::new(size);
    fetched.directory(source, file).await?;
    let archive = zip::ZipArchive::new(&mut fetched)
        .map_err(|e| bad(format!("not a PyTorch zip archive: {e}")))?;
    let mut found = HashMap::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
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
        found.insert(
            name,
            Entry {
                header: entry.header_start(),
                size: entry.size(),
            },
        );
    }
    Ok(found)
}

/// The byte range of an entry's data: after its local header, whose name and extra field
/// (torch pads storages to 64 bytes there) have lengths of their own.
async fn data_range(
    source: &impl FileSource,
    file: &str,
    name: &str,
    entry: &Entry,
    size: u64,
) -> Result<Range<u64>> {
    const LOCAL_HEADER: u64 = 30;
    let bad = |message: String| Error::format(file, message);
    if entry
        .header
        .checked_add(LOCAL_HEADER)
        .is_none_or(|end| end > size)
    {
        return Err(bad(format!(
            "{name}: its header lies past the end of the file"
        )));
    }
    let header = source.read_range(file, entry.header, LOCAL_HEADER).await?;
    if header[..4] != [0x50, 0x4b, 0x03, 0x04] {
        return Err(bad(format!(
            "{name}: no local header where the directory places it"
        )));
    }
    let variable = u64::from(u16::from_le_bytes([header[26], header[27]]))
        + u64::from(u16::from_le_bytes([header[28], header[29]]));
    let start = entry.header + LOCAL_HEADER + variable;
    start
        .checked_add(entry.size)
        .filter(|&end| end <= size)
        .map(|end| start..end)
        .ok_or_else(|| bad(format!("{name} reaches past the end of the file")))
}

/// The tensors of one PyTorch file, placed in it.
pub(crate) async fn index(
    source: &impl FileSource,
    file: &str,
    size: u64,
) -> Result<Vec<(String, StoredTensor)>> {
    let bad = |message: String| Error::format(file, message);
    let entries = entries(source, file, size).await?;
    let mut pickles = entries
        .keys()
        .filter(|n| n.ends_with("/data.pkl") || *n == "data.pkl");
    let (Some(pickle_name), None) = (pickles.next(), pickles.next()) else {
        return Err(bad(
            "no single data.pkl (the state dict) in the archive".into()
        ));
    };
    let prefix = pickle_name.trim_end_matches("data.pkl");
    let pickle_range = data_range(source, file, pickle_name, &entries[pickle_name], size).await?;
    let pickle_bytes = source
        .read_range(
            file,
            pickle_range.start,
            pickle_range.end - pickle_range.start,
        )
        .await?;
    let state = pickle::load(&pickle_bytes, &StateDictGlobals).map_err(bad)?;
    let Value::Dict(items) = state else {
        return Err(bad("the pickle holds no dict of tensors".into()));
    };
    // Tied weights share a storage: each storage's header is read once.
    let mut storages: HashMap<String, Range<u64>> = HashMap::new();
    let mut tensors = Vec::with_capacity(items.len());
    for (key, value) in &items {
        let name = key
            .as_str()
            .ok_or_else(|| bad(format!("a state dict key that is not a name: {key:?}")))?;
        let t = tensor(name, value).map_err(bad)?;
        let entry_name = format!("{prefix}data/{}", t.key);
        let storage = match storages.get(&entry_name) {
            Some(range) => range.clone(),
            None => {
                let entry = entries.get(&entry_name).ok_or_else(|| {
                    bad(format!(
                        "\"{name}\": its storage {entry_name} is not in the archive"
                    ))
                })?;
                let range = data_range(source, file, &entry_name, entry, size).await?;
                storages.insert(entry_name.clone(), range.clone());
                range
            }
        };
        let element = t.kind.as_ref().map_or(1, |k| k.size()) as u64;
        let storage_len = storage.end - storage.start;
        if storage_len < (t.storage_elements as u64).saturating_mul(element) {
            return Err(bad(format!(
                "\"{name}\": storage {entry_name} holds {storage_len} bytes, fewer than its {} elements",
                t.storage_elements
            )));
        }
        let stored = StoredTensor {
            kind: t.kind,
            shape: t.shape,
            bytes: storage.start + t.elements.start as u64 * element
                ..storage.start + t.elements.end as u64 * element,
        };
        tensors.push((name.to_string(), stored));
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests;
