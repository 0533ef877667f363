//! The files of a model, already in memory: the browser fetches them, native code reads
//! them from a folder. Two layouts: the Hugging Face hub's, and Firefox Translations'
//! (a Marian `.bin` model, its shortlist, and a bergamot config naming them).

use serde_yaml::Value;

use crate::error::{Error, Result};

pub struct ModelFiles {
    /// tokenizer.json
    pub tokenizer: Vec<u8>,
    pub model: ModelData,
}

pub enum ModelData {
    HuggingFace {
        config: String,
        generation_config: Option<String>,
        /// (file name, contents) of `model.safetensors` or of every shard.
        weights: Vec<(String, Vec<u8>)>,
    },
    Marian {
        /// (file name, contents) of the `.bin` model.
        model: (String, Vec<u8>),
        /// (file name, contents) of the binary lexical shortlist, when there is one.
        shortlist: Option<(String, Vec<u8>)>,
        /// The config's `max-length-factor`.
        max_length_factor: Option<f32>,
    },
}

/// What a bergamot config (`config.intgemm8bitalpha.yml` and the like) says about a Marian
/// model folder.
#[derive(Debug, PartialEq)]
pub struct BergamotManifest {
    pub model: String,
    pub shortlist: Option<String>,
    pub max_length_factor: Option<f32>,
}

/// The config files a Marian model folder may name its files in, in order of preference.
pub const BERGAMOT_CONFIGS: [&str; 3] = [
    "config.intgemm8bitalpha.yml",
    "config.intgemm8bit.yml",
    "config.yml",
];

fn plain_file_name(file: &str, name: &str) -> Result<String> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Err(Error::format(
            file,
            format!("\"{name}\" is not a plain file name in the model folder"),
        ));
    }
    Ok(name.to_string())
}

/// Reads a bergamot config: `models` (the first is used), `shortlist` (its first entry is
/// the file) and `max-length-factor`.
pub fn bergamot_manifest(file: &str, yml: &str) -> Result<BergamotManifest> {
    let value: Value = serde_yaml::from_str(yml).map_err(|e| Error::format(file, e))?;
    let first = |key: &str| -> Result<Option<String>> {
        match value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Sequence(items)) => match items.first() {
                Some(Value::String(name)) => plain_file_name(file, name).map(Some),
                _ => Err(Error::format(
                    file,
                    format!("\"{key}\" must list a file name first"),
                )),
            },
            Some(_) => Err(Error::format(file, format!("\"{key}\" must be a list"))),
        }
    };
    let model = first("models")?
        .ok_or_else(|| Error::format(file, "\"models\" must name the model file"))?;
    let max_length_factor = match value.get("max-length-factor") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|f| f.is_finite() && *f > 0.0)
                .ok_or_else(|| {
                    Error::format(file, "\"max-length-factor\" must be a positive number")
                })? as f32,
        ),
    };
    Ok(BergamotManifest {
        model,
        shortlist: first("shortlist")?,
        max_length_factor,
    })
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
    /// and model.safetensors or the shards of model.safetensors.index.json; or, without
    /// config.json, a bergamot config and the Marian model and shortlist it names.
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
        if !dir.join("config.json").exists()
            && let Some(config) = BERGAMOT_CONFIGS.iter().find(|c| dir.join(c).exists())
        {
            let manifest = bergamot_manifest(config, &text(config)?)?;
            return Ok(ModelFiles {
                tokenizer: read("tokenizer.json")?,
                model: ModelData::Marian {
                    model: (manifest.model.clone(), read(&manifest.model)?),
                    shortlist: match &manifest.shortlist {
                        Some(name) => Some((name.clone(), read(name)?)),
                        None => None,
                    },
                    max_length_factor: manifest.max_length_factor,
                },
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
                    "no model.safetensors or model.safetensors.index.json (or a bergamot config such as config.intgemm8bitalpha.yml)",
                ),
            });
        };
        Ok(ModelFiles {
            tokenizer: read("tokenizer.json")?,
            model: ModelData::HuggingFace {
                config: text("config.json")?,
                generation_config: if dir.join("generation_config.json").exists() {
                    Some(text("generation_config.json")?)
                } else {
                    None
                },
                weights,
            },
        })
    }
}
