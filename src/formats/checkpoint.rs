//! Weights from safetensors files (one file or the shards of a sharded checkpoint),
//! converted to f32 whatever their stored dtype.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors, tensor::Metadata};

use super::tensors::TensorSource;
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
        let values = match info.dtype {
            Dtype::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(bytes),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::format(
                    shard.file.clone(),
                    format!(
                        "tensor \"{name}\" has dtype {other:?}; only F32, F16 and BF16 are supported"
                    ),
                ));
            }
        };
        Ok((values, info.shape.clone()))
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
        if shape != expected {
            return Err(Error::TensorShape {
                file: self.info(name)?.0.file.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: shape,
            });
        }
        Ok(values)
    }
}
