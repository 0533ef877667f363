//! A model folder turned into what an engine holds, checked before any device is touched:
//! the tokenizer and the description (config.json and generation defaults) first, then the
//! weights, which a Firefox Translations model needs for its description too (the
//! architecture lives in the `.bin` file's YAML).

use crate::error::{Error, Result};
use crate::formats::config_json::spec_from_config_json;
use std::ops::Range;

use crate::formats::layout::FolderKind;
use crate::formats::marian::bin::MarianBin;
use crate::formats::marian::shortlist::Shortlist;
use crate::formats::marian::tensors::MarianSource;
use crate::formats::marian::yaml::{MAX_POSITIONS, spec_from_marian_yaml};
use crate::formats::{Checkpoint, FileSource, ModelFolder, TensorSource};
use crate::generate::GenerationOptions;
use crate::model::{ModelSpec, WeightFormat};
use crate::tokenizer::Tokenizer;

/// Where the weights are read from as they are uploaded.
pub(crate) enum StoredWeights<S> {
    /// A Hugging Face checkpoint, read tensor by tensor from its files.
    Checkpoint(Checkpoint<S>),
    /// A Firefox Translations model, small enough to be held whole.
    Marian(MarianSource),
}

impl<S: FileSource> TensorSource for StoredWeights<S> {
    fn files(&self) -> String {
        match self {
            StoredWeights::Checkpoint(c) => c.files(),
            StoredWeights::Marian(m) => m.files(),
        }
    }

    fn contains(&self, name: &str) -> bool {
        match self {
            StoredWeights::Checkpoint(c) => c.contains(name),
            StoredWeights::Marian(m) => m.contains(name),
        }
    }

    fn shape(&self, name: &str) -> Result<Vec<usize>> {
        match self {
            StoredWeights::Checkpoint(c) => c.shape(name),
            StoredWeights::Marian(m) => m.shape(name),
        }
    }

    async fn rows(&self, name: &str, expected: &[usize], rows: Range<usize>) -> Result<Vec<f32>> {
        match self {
            StoredWeights::Checkpoint(c) => c.rows(name, expected, rows).await,
            StoredWeights::Marian(m) => m.rows(name, expected, rows).await,
        }
    }

    fn quantized(&self, name: &str, expected: &[usize]) -> Result<Option<(Vec<i8>, f32)>> {
        match self {
            StoredWeights::Checkpoint(c) => c.quantized(name, expected),
            StoredWeights::Marian(m) => m.quantized(name, expected),
        }
    }
}

/// Everything an engine needs but the device; the weights' headers are read and checked,
/// their values are read while they upload.
pub(crate) struct LoadedFiles<S> {
    pub spec: ModelSpec,
    pub defaults: GenerationOptions,
    pub tokenizer: Tokenizer,
    pub weights: StoredWeights<S>,
    pub shortlist: Option<Shortlist>,
    /// The precision the checkpoint keeps its weights in.
    pub stored_format: WeightFormat,
}

/// Reads and checks every file of the folder in `source`.
pub(crate) async fn load_files<S: FileSource>(source: &S) -> Result<LoadedFiles<&S>> {
    let folder = ModelFolder::open(source).await?;
    match &folder.kind {
        FolderKind::HuggingFace {
            config,
            generation_config,
        } => {
            let spec = spec_from_config_json(config)?;
            let tokenizer =
                Tokenizer::from_files(&folder.tokenizer, model_type(config).as_deref())?;
            let defaults = match generation_config {
                Some(text) => GenerationOptions::from_generation_config(text)?,
                None => GenerationOptions::from_model_config(config)?,
            };
            let (format, files) = folder.weight_files().await?;
            let weights = Checkpoint::open(source, format, files).await?;
            Ok(LoadedFiles {
                spec,
                defaults,
                tokenizer,
                weights: StoredWeights::Checkpoint(weights),
                shortlist: None,
                stored_format: WeightFormat::F32,
            })
        }
        FolderKind::FirefoxTranslations(manifest) => {
            let tokenizer = Tokenizer::from_files(&folder.tokenizer, None)?;
            let ((file, bytes), shortlist) = folder.read_marian(manifest).await?;
            let bin = MarianBin::parse(&file, bytes)?;
            let vocab = bin.shape("Wemb")?.first().copied().unwrap_or(0);
            let spec = spec_from_marian_yaml(bin.yaml(), &file, vocab)?;
            if tokenizer.vocab_size() != vocab {
                return Err(Error::format(
                    "tokenizer.json",
                    format!(
                        "has {} entries but the model {file} has {vocab}",
                        tokenizer.vocab_size()
                    ),
                ));
            }
            let shortlist = match shortlist {
                Some((name, bytes)) => Some(Shortlist::parse(&name, &bytes)?),
                None => None,
            };
            let defaults = GenerationOptions {
                max_length_factor: manifest.max_length_factor,
                max_length: Some(MAX_POSITIONS),
                ..GenerationOptions::default()
            };
            Ok(LoadedFiles {
                tokenizer: tokenizer.with_end_of_sentence(spec.eos_token_ids[0]),
                spec,
                defaults,
                weights: StoredWeights::Marian(MarianSource::new(bin)),
                shortlist,
                stored_format: WeightFormat::Int8,
            })
        }
    }
}

/// config.json's top-level `model_type` (checked when the description is read).
fn model_type(config: &str) -> Option<String> {
    let config: serde_json::Value = serde_json::from_str(config).ok()?;
    config.get("model_type")?.as_str().map(str::to_string)
}
