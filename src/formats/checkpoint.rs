//! Weights from safetensors files (one file or the shards of a sharded checkpoint),
//! converted to f32 whatever their stored dtype.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors, tensor::Metadata};

use super::tensors::{FloatKind, TensorSource, shaped};
use crate::error::{Error, Result};

struct Shard {
    file: String,
    bytes: Vec<u8>,
    data_start: usize,
    metadata: Metadata,
}

pub struct Checkpoint {
    shards: Vec<Shard>,
    /// Tensor name -> index of the shard that holds it.
    location: HashMap<String, usize>,
}

impl Checkpoint {
    /// `shards` are (file name, contents); the safetensors library validates headers and offsets.
    pub fn from_shards(shards: Vec<(String, Vec<u8>)>) -> Result<Checkpoint> {
        let mut parsed = Vec::with_capacity(shards.len());
        let mut location = HashMap::new();
        for (index, (file, bytes)) in shards.into_iter().enumerate() {
            let (header_len, metadata) =
                SafeTensors::read_metadata(&bytes).map_err(|e| Error::format(file.clone(), e))?;
            for name in metadata.offset_keys() {
                location.insert(name, index);
            }
            parsed.push(Shard {
                file,
                bytes,
                data_start: 8 + header_len,
                metadata,
            });
        }
        Ok(Checkpoint {
            shards: parsed,
            location,
        })
    }

    fn file_names(&self) -> String {
        self.shards
            .iter()
            .map(|s| s.file.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn info(&self, name: &str) -> Result<(&Shard, &safetensors::tensor::TensorInfo)> {
        let Some(&index) = self.location.get(name) else {
            return Err(Error::MissingTensor {
                file: self.file_names(),
                name: name.to_string(),
            });
        };
        let shard = &self.shards[index];
        let info = shard
            .metadata
            .info(name)
            .ok_or_else(|| Error::MissingTensor {
                file: shard.file.clone(),
                name: name.to_string(),
            })?;
        Ok((shard, info))
    }

    /// The tensor's values as f32 and its shape.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let (shard, info) = self.info(name)?;
        let (start, end) = info.data_offsets;
        let bytes = &shard.bytes[shard.data_start + start..shard.data_start + end];
        let kind = match info.dtype {
            Dtype::F32 => FloatKind::F32,
            Dtype::F16 => FloatKind::F16,
            Dtype::BF16 => FloatKind::BF16,
            other => {
                return Err(Error::format(
                    shard.file.clone(),
                    format!(
                        "tensor \"{name}\" has dtype {other:?}; only F32, F16 and BF16 are supported"
                    ),
                ));
            }
        };
        Ok((kind.to_f32(bytes), info.shape.clone()))
    }
}

impl TensorSource for Checkpoint {
    fn files(&self) -> String {
        self.file_names()
    }

    fn contains(&self, name: &str) -> bool {
        self.location.contains_key(name)
    }

    fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.info(name)?.1.shape.clone())
    }

    fn tensor_shaped(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let (values, shape) = self.tensor_f32(name)?;
        shaped(&self.info(name)?.0.file, name, values, &shape, expected)
    }
}
