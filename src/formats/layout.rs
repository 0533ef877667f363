//! What a model folder holds, in one place for every source (a folder, a URL base, picked
//! files, memory). Two layouts:
//! - the Hugging Face hub's: `config.json`, `tokenizer.json`, `generation_config.json` if
//!   present, and `model.safetensors` or the shards listed by `model.safetensors.index.json`;
//! - Firefox Translations': a bergamot config (`config.intgemm8bitalpha.yml` and the like)
//!   naming a Marian `.bin` model and its lexical shortlist, plus `tokenizer.json`.
//!
//! The small files are read first ([`ModelFolder::open`]), so the model's description and
//! tokenizer can be checked before its weights are read ([`ModelFolder::read_safetensors`], [`ModelFolder::read_marian`]).

use super::marian::bergamot::{BERGAMOT_CONFIGS, BergamotManifest, bergamot_manifest};
use super::source::{FileSource, plain_file_name};
use crate::error::{Error, Result};

/// A file's name and contents.
pub type NamedFile = (String, Vec<u8>);

/// The layout of a folder, with its description files read.
pub enum FolderKind {
    HuggingFace {
        config: String,
        generation_config: Option<String>,
    },
    FirefoxTranslations(BergamotManifest),
}

/// A model folder whose small files are read; the weights follow on request.
pub struct ModelFolder<'s, S: FileSource> {
    files: Files<'s, S>,
    /// tokenizer.json
    pub tokenizer: Vec<u8>,
    pub kind: FolderKind,
}

const CONFIG: &str = "config.json";
const TOKENIZER: &str = "tokenizer.json";
const GENERATION_CONFIG: &str = "generation_config.json";
const WEIGHTS: &str = "model.safetensors";
const WEIGHTS_INDEX: &str = "model.safetensors.index.json";

impl<'s, S: FileSource> ModelFolder<'s, S> {
    /// Finds the layout and reads the description files and the tokenizer.
    pub async fn open(source: &'s S) -> Result<ModelFolder<'s, S>> {
        let files = Files {
            source,
            listing: source.list().await?,
        };
        let kind = match files.optional(CONFIG).await? {
            Some(config) => FolderKind::HuggingFace {
                config: text(CONFIG, config)?,
                generation_config: match files.optional(GENERATION_CONFIG).await? {
                    Some(bytes) => Some(text(GENERATION_CONFIG, bytes)?),
                    None => None,
                },
            },
            None => FolderKind::FirefoxTranslations(files.bergamot_manifest().await?),
        };
        let tokenizer = files.required(TOKENIZER).await?;
        Ok(ModelFolder {
            files,
            tokenizer,
            kind,
        })
    }

    /// The weights of a Hugging Face folder: `model.safetensors`, or every shard of the
    /// index.
    pub async fn read_safetensors(&self) -> Result<Vec<NamedFile>> {
        let files = &self.files;
        if let Some(bytes) = files.optional(WEIGHTS).await? {
            return Ok(vec![(WEIGHTS.into(), bytes)]);
        }
        let Some(index) = files.optional(WEIGHTS_INDEX).await? else {
            return Err(files.missing(&format!("{WEIGHTS} or {WEIGHTS_INDEX}")));
        };
        let mut shards = Vec::new();
        for name in shard_names(&text(WEIGHTS_INDEX, index)?)? {
            let bytes = self.files.required(&name).await?;
            shards.push((name, bytes));
        }
        Ok(shards)
    }

    /// The Marian model and shortlist a bergamot config names.
    pub async fn read_marian(
        &self,
        manifest: &BergamotManifest,
    ) -> Result<(NamedFile, Option<NamedFile>)> {
        let model = self.files.required(&manifest.model).await?;
        let shortlist = match &manifest.shortlist {
            Some(name) => Some((name.clone(), self.files.required(name).await?)),
            None => None,
        };
        Ok(((manifest.model.clone(), model), shortlist))
    }
}

/// A source with its listing, where it has one: absent files are then known without a
/// request.
struct Files<'s, S: FileSource> {
    source: &'s S,
    listing: Option<Vec<String>>,
}

impl<S: FileSource> Files<'_, S> {
    async fn optional(&self, name: &str) -> Result<Option<Vec<u8>>> {
        if let Some(names) = &self.listing
            && !names.iter().any(|n| n == name)
        {
            return Ok(None);
        }
        self.source.read(name).await
    }

    async fn required(&self, name: &str) -> Result<Vec<u8>> {
        self.optional(name).await?.ok_or_else(|| self.missing(name))
    }

    fn missing(&self, file: &str) -> Error {
        Error::MissingFile {
            file: file.to_string(),
            location: self.source.location(),
        }
    }

    async fn bergamot_manifest(&self) -> Result<BergamotManifest> {
        for name in BERGAMOT_CONFIGS {
            if let Some(bytes) = self.optional(name).await? {
                return bergamot_manifest(name, &text(name, bytes)?);
            }
        }
        Err(Error::format(
            self.source.location(),
            format!(
                "neither config.json nor a bergamot config ({}) was found",
                BERGAMOT_CONFIGS.join(", ")
            ),
        ))
    }
}

fn text(name: &str, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::format(name, "not UTF-8 text"))
}

/// The shard file names listed by `model.safetensors.index.json`, in order of first use.
pub fn shard_names(index_json: &str) -> Result<Vec<String>> {
    let value: serde_json::Value =
        serde_json::from_str(index_json).map_err(|e| Error::format(WEIGHTS_INDEX, e))?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::format(WEIGHTS_INDEX, "missing \"weight_map\" object"))?;
    let mut names: Vec<String> = Vec::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| {
            Error::format(
                WEIGHTS_INDEX,
                format!("\"{tensor}\" must map to a file name"),
            )
        })?;
        let file = plain_file_name(WEIGHTS_INDEX, file)?;
        if !names.contains(&file) {
            names.push(file);
        }
    }
    if names.is_empty() {
        return Err(Error::format(
            WEIGHTS_INDEX,
            "\"weight_map\" lists no tensors",
        ));
    }
    Ok(names)
}
