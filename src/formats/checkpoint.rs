//! A checkpoint's weights (safetensors or PyTorch; one file or the shards an index lists),
//! read tensor by tensor from any [`FileSource`]: only the headers are read when it opens,
//! then each tensor's bytes (or a block of its rows) when the loader asks for them, so no
//! file is ever held whole.

use std::collections::HashMap;
use std::ops::Range;

use super::layout::{CheckpointFormat, NamedFile};
use super::source::{FileSource, MemorySource, completed};
use super::tensors::{StoredTensor, TensorSource};
use super::{pytorch, safetensors_header};
use crate::error::{Error, Result};

pub struct Checkpoint<S> {
    source: S,
    files: Vec<String>,
    /// Tensor name -> (index of its file, where it lies).
    tensors: HashMap<String, (usize, StoredTensor)>,
}

impl<S: FileSource> Checkpoint<S> {
    /// Reads the headers of `files` (shards in the order their index lists them).
    pub async fn open(source: S, format: CheckpointFormat, files: Vec<String>) -> Result<Self> {
        let mut tensors = HashMap::new();
        for (index, file) in files.iter().enumerate() {
            let size = source.size(file).await?.ok_or_else(|| Error::MissingFile {
                file: file.to_string(),
                location: source.location(),
            })?;
            let found = match format {
                CheckpointFormat::Safetensors => {
                    safetensors_header::index(&source, file, size).await?
                }
                CheckpointFormat::Pytorch => pytorch::index(&source, file, size).await?,
            };
            tensors.extend(found.into_iter().map(|(name, t)| (name, (index, t))));
        }
        Ok(Checkpoint {
            source,
            files,
            tensors,
        })
    }

    fn find(&self, name: &str) -> Result<(&str, &StoredTensor)> {
        self.tensors
            .get(name)
            .map(|(file, t)| (self.files[*file].as_str(), t))
            .ok_or_else(|| Error::MissingTensor {
                file: self.files(),
                name: name.to_string(),
            })
    }
}

impl Checkpoint<MemorySource> {
    /// A checkpoint of files held in memory (tests, fuzzing): (file name, contents).
    pub fn from_files(format: CheckpointFormat, files: Vec<NamedFile>) -> Result<Self> {
        let names = files.iter().map(|(name, _)| name.clone()).collect();
        let source = files
            .into_iter()
            .fold(MemorySource::new("memory"), |source, (name, bytes)| {
                source.with(name, bytes)
            });
        completed(Checkpoint::open(source, format, names))
    }
}

impl<S: FileSource> TensorSource for Checkpoint<S> {
    fn files(&self) -> String {
        self.files.join(", ")
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.find(name)?.1.shape.clone())
    }

    async fn rows(&self, name: &str, expected: &[usize], rows: Range<usize>) -> Result<Vec<f32>> {
        let (file, stored) = self.find(name)?;
        check_shape(file, name, &stored.shape, expected)?;
        let kind = stored.kind.clone().map_err(|dtype| {
            Error::format(
                file,
                format!(
                    "tensor \"{name}\" has dtype {dtype}; only F32, F16 and BF16 are supported"
                ),
            )
        })?;
        let row_bytes = (row_len(expected) * kind.size()) as u64;
        let start = stored.bytes.start + rows.start as u64 * row_bytes;
        let len = rows.len() as u64 * row_bytes;
        if start + len > stored.bytes.end {
            return Err(Error::invalid(format!(
                "rows {rows:?} of tensor \"{name}\" lie outside its shape {expected:?}"
            )));
        }
        let bytes = self.source.read_range(file, start, len).await?;
        Ok(kind.to_f32(&bytes))
    }
}

/// The elements of one row (of the leading dimension) of a tensor of `shape`.
pub(crate) fn row_len(shape: &[usize]) -> usize {
    shape.iter().skip(1).product()
}

/// Checks that tensor `name` of `file` has the shape the loader expects.
pub(crate) fn check_shape(
    file: &str,
    name: &str,
    shape: &[usize],
    expected: &[usize],
) -> Result<()> {
    if shape != expected {
        return Err(Error::TensorShape {
            file: file.to_string(),
            name: name.to_string(),
            expected: expected.to_vec(),
            found: shape.to_vec(),
        });
    }
    Ok(())
}
