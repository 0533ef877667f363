//! What a model folder holds, in one place for every source (a folder, a URL base, picked
//! files, memory). Two layouts:
//! - the Hugging Face hub's: `config.json`, `generation_config.json` if present, the
//!   tokenizer's files (`tokenizer.json`, or the vocabulary files older repos ship:
//!   SentencePiece models, `vocab.json` and `merges.txt`, beside `tokenizer_config.json`),
//!   and `model.safetensors`, `pytorch_model.bin`, or the shards either index lists;
//! - Firefox Translations': a bergamot config (`config.intgemm8bitalpha.yml` and the like)
//!   naming a Marian `.bin` model and its lexical shortlist, plus `tokenizer.json`.
//!
//! The small files are read first ([`ModelFolder::open`]), so the model's description and
//! tokenizer can be checked before its weights are read ([`ModelFolder::weight_files`], [`ModelFolder::read_marian`]).

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

/// The files a folder's tokenizer is built from, as found.
#[derive(Default)]
pub struct TokenizerFiles {
    files: Vec<NamedFile>,
}

impl TokenizerFiles {
    pub fn new(files: Vec<NamedFile>) -> Self {
        TokenizerFiles { files }
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bytes)| bytes.as_slice())
    }

    /// Every name a folder's tokenizer may be built from.
    pub fn candidates() -> impl Iterator<Item = &'static str> {
        std::iter::once(TOKENIZER)
            .chain(TOKENIZER_SETTINGS)
            .chain(VOCABULARIES)
    }

    /// The names found, in the order they were read.
    pub fn names(&self) -> Vec<&str> {
        self.files.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// Settings files every tokenizer may have beside its vocabulary.
const TOKENIZER_SETTINGS: [&str; 3] = [
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
];
/// Vocabulary files of repos without a tokenizer.json, read only when it is missing.
const VOCABULARIES: [&str; 6] = [
    "spiece.model",
    "sentencepiece.bpe.model",
    "source.spm",
    "target.spm",
    "vocab.json",
    "merges.txt",
];

/// How a Hugging Face folder's weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointFormat {
    Safetensors,
    Pytorch,
}

/// A model folder whose small files are read; the weights follow on request.
pub struct ModelFolder<'s, S: FileSource> {
    files: Files<'s, S>,
    pub tokenizer: TokenizerFiles,
    pub kind: FolderKind,
}

const CONFIG: &str = "config.json";
const TOKENIZER: &str = "tokenizer.json";
const GENERATION_CONFIG: &str = "generation_config.json";
/// Weight files in the order transformers prefers them: a single file or an index of shards,
/// safetensors before PyTorch's pickles.
const WEIGHTS: [(&str, &str, CheckpointFormat); 2] = [
    (
        "model.safetensors",
        "model.safetensors.index.json",
        CheckpointFormat::Safetensors,
    ),
    (
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        CheckpointFormat::Pytorch,
    ),
];

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
        let tokenizer = match &kind {
            FolderKind::HuggingFace { .. } => files.tokenizer_files().await?,
            FolderKind::FirefoxTranslations(_) => {
                TokenizerFiles::new(vec![(TOKENIZER.into(), files.required(TOKENIZER).await?)])
            }
        };
        Ok(ModelFolder {
            files,
            tokenizer,
            kind,
        })
    }

    /// The weight files of a Hugging Face folder: one file, or every shard of an index (read
    /// here; the weights themselves are read tensor by tensor later).
    pub async fn weight_files(&self) -> Result<(CheckpointFormat, Vec<String>)> {
        let files = &self.files;
        for (single, index_name, format) in WEIGHTS {
            if files.exists(single).await? {
                return Ok((format, vec![single.into()]));
            }
            if let Some(index) = files.optional(index_name).await? {
                let shards = shard_names(index_name, &text(index_name, index)?)?;
                for shard in &shards {
                    if !files.exists(shard).await? {
                        return Err(files.missing(shard));
                    }
                }
                return Ok((format, shards));
            }
        }
        let names: Vec<&str> = WEIGHTS
            .iter()
            .flat_map(|(one, index, _)| [*one, *index])
            .collect();
        Err(files.missing(&names.join(" or ")))
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

    /// Whether the source holds `name`, without reading it.
    async fn exists(&self, name: &str) -> Result<bool> {
        match &self.listing {
            Some(names) => Ok(names.iter().any(|n| n == name)),
            None => Ok(self.source.size(name).await?.is_some()),
        }
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

    /// `tokenizer.json` and the settings beside it; without it, the vocabulary files.
    async fn tokenizer_files(&self) -> Result<TokenizerFiles> {
        let mut found = Vec::new();
        for name in TOKENIZER_SETTINGS {
            if let Some(bytes) = self.optional(name).await? {
                found.push((name.to_string(), bytes));
            }
        }
        match self.optional(TOKENIZER).await? {
            Some(bytes) => found.push((TOKENIZER.into(), bytes)),
            None => {
                for name in VOCABULARIES {
                    if let Some(bytes) = self.optional(name).await? {
                        found.push((name.to_string(), bytes));
                    }
                }
            }
        }
        if found.is_empty() {
            return Err(self.missing(&format!(
                "{TOKENIZER} or any other tokenizer file ({})",
                TOKENIZER_SETTINGS
                    .iter()
                    .chain(&VOCABULARIES)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(TokenizerFiles::new(found))
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

/// The shard file names listed by an index (`model.safetensors.index.json`,
/// `pytorch_model.bin.index.json`), in order of first use.
pub fn shard_names(index_file: &str, index_json: &str) -> Result<Vec<String>> {
    let value: serde_json::Value =
        serde_json::from_str(index_json).map_err(|e| Error::format(index_file, e))?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::format(index_file, "missing \"weight_map\" object"))?;
    let mut names: Vec<String> = Vec::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| {
            Error::format(index_file, format!("\"{tensor}\" must map to a file name"))
        })?;
        let file = plain_file_name(index_file, file)?;
        if !names.contains(&file) {
            names.push(file);
        }
    }
    if names.is_empty() {
        return Err(Error::format(index_file, "\"weight_map\" lists no tensors"));
    }
    Ok(names)
}
