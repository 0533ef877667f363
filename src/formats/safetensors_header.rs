//! The header of a safetensors file, read on its own: 8 bytes of length, then the JSON that
//! places every tensor. The safetensors library checks the JSON (dtypes, shapes, contiguous
//! offsets); the data must end where the file does.

use safetensors::Dtype;
use safetensors::tensor::Metadata;

use super::source::FileSource;
use super::tensors::{FloatKind, StoredTensor};
use crate::error::{Error, Result};

/// The safetensors library's own bound on a header, which keeps a hostile length from asking
/// for gigabytes before anything is checked.
const MAX_HEADER_BYTES: u64 = 100_000_000;

pub(crate) async fn index(
    source: &impl FileSource,
    file: &str,
    size: u64,
) -> Result<Vec<(String, StoredTensor)>> {
    let bad = |message: String| Error::format(file, message);
    if size < 8 {
        return Err(bad(format!(
            "{size} bytes: too short for a safetensors header"
        )));
    }
    let length = source.read_range(file, 0, 8).await?;
    let header_len = u64::from_le_bytes(length.try_into().expect("8 bytes were read"));
    if header_len > MAX_HEADER_BYTES || 8 + header_len > size {
        return Err(bad(format!(
            "a header of {header_len} bytes does not fit the file's {size}"
        )));
    }
    let header = source.read_range(file, 8, header_len).await?;
    let header =
        std::str::from_utf8(&header).map_err(|e| bad(format!("the header is not UTF-8: {e}")))?;
    let metadata: Metadata =
        serde_json::from_str(header).map_err(|e| bad(format!("invalid header: {e}")))?;
    let data_start = 8 + header_len;
    let tensors = metadata.tensors();
    let data_end = tensors
        .values()
        .map(|info| info.data_offsets.1 as u64)
        .max()
        .unwrap_or(0);
    if data_start + data_end != size {
        return Err(bad(format!(
            "the header places {data_end} bytes of data, but the file holds {}",
            size - data_start
        )));
    }
    Ok(tensors
        .into_iter()
        .map(|(name, info)| {
            let kind = match info.dtype {
                Dtype::F32 => Ok(FloatKind::F32),
                Dtype::F16 => Ok(FloatKind::F16),
                Dtype::BF16 => Ok(FloatKind::BF16),
                other => Err(format!("{other:?}")),
            };
            let (start, end) = info.data_offsets;
            let stored = StoredTensor {
                kind,
                shape: info.shape.clone(),
                bytes: data_start + start as u64..data_start + end as u64,
            };
            (name, stored)
        })
        .collect())
}
