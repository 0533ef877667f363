//! The files of a model as the Hugging Face hub lays them out, already in memory: the
//! browser fetches them, native code reads them from a folder.

use crate::error::{Error, Result};

pub struct ModelFiles {
    pub config: String,
    pub generation_config: Option<String>,
    pub tokenizer: Vec<u8>,
    /// (file name, contents) of `model.safetensors` or of every shard.
    pub weights: Vec<(String, Vec<u8>)>,
}

/// The shard file names listed by `model.safetensors.index.json`, in order of first use.
pub fn shard_names(index_json: &str) -> Result<Vec<String>> {
    const FILE: &str = "model.safetensors.index.json";
    let value: serde_json::Value =
        serde_json::from_str(index_json).map_err(|e| Error::format(FILE, e))?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::format(FILE, "missing \"weight_map\" object"))?;
    let mut names: Vec<String> = Vec::new();
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| Error::format(FILE, format!("\"{tensor}\" must map to a file name")))?;
        if file.contains('/') || file.contains('\\') || file.starts_with('.') {
            return Err(Error::format(
                FILE,
                format!("shard name \"{file}\" is not a plain file name"),
            ));
        }
        if !names.iter().any(|n| n == file) {
            names.push(file.to_string());
        }
    }
    if names.is_empty() {
        return Err(Error::format(FILE, "\"weight_map\" lists no tensors"));
    }
    Ok(names)
}

#[cfg(not(target_arch = "wasm32"))]
impl ModelFiles {
    /// Reads a model folder: config.json, tokenizer.json, generation_config.json if present,
    /// and model.safetensors or the shards of model.safetensors.index.json.
    pub fn read_dir(dir: &std::path::Path) -> Result<ModelFiles> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| Error::Io { path, source })
        };
        let text = |name: &str| {
            String::from_utf8(read(name)?)
                .map_err(|_| Error::format(name.to_string(), "not UTF-8 text"))
        };
        if !dir.is_dir() {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such model folder"),
            });
        }
        let weights = if dir.join("model.safetensors").exists() {
            vec![("model.safetensors".to_string(), read("model.safetensors")?)]
        } else if dir.join("model.safetensors.index.json").exists() {
            shard_names(&text("model.safetensors.index.json")?)?
                .into_iter()
                .map(|name| Ok((name.clone(), read(&name)?)))
                .collect::<Result<Vec<_>>>()?
        } else {
            return Err(Error::Io {
                path: dir.join("model.safetensors"),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no model.safetensors or model.safetensors.index.json",
                ),
            });
        };
        Ok(ModelFiles {
            config: text("config.json")?,
            generation_config: if dir.join("generation_config.json").exists() {
                Some(text("generation_config.json")?)
            } else {
                None
            },
            tokenizer: read("tokenizer.json")?,
            weights,
        })
    }
}
