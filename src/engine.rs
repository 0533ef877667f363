//! The public entry point: a loaded model with its tokenizer on one GPU.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::files::{ModelData, ModelFiles};
use crate::generate::search::Search;
use crate::generate::{self, Generated, Generation, GenerationConfig, GenerationOptions};
use crate::gpu::Gpu;
use crate::model::marian_bin::MarianBin;
use crate::model::marian_source::MarianSource;
use crate::model::marian_yaml::{MAX_POSITIONS, spec_from_marian_yaml};
use crate::model::{Checkpoint, Model, ModelSpec, Shortlist, TensorSource, WeightFormat};
use crate::tokenizer::Tokenizer;

struct Inner {
    gpu: Arc<Gpu>,
    model: Model,
    tokenizer: Tokenizer,
    defaults: GenerationOptions,
}

/// A model ready to generate. Cloning is cheap and shares the model.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Loads `files` onto a new GPU device, with weights in the precision the checkpoint
    /// stores (f32 for floating-point checkpoints, int8 for Marian's quantised models). The
    /// files are parsed and checked first, so a bad file fails before any device is created.
    pub async fn new(files: ModelFiles) -> Result<Engine> {
        let parsed = ParsedFiles::parse(files)?;
        let format = parsed.stored_format;
        parsed.upload(Gpu::new().await?, format)
    }

    /// Like `new`, keeping linear-layer weights in `format` (f16 halves their memory, int8
    /// quarters it).
    pub async fn new_with_format(files: ModelFiles, format: WeightFormat) -> Result<Engine> {
        let parsed = ParsedFiles::parse(files)?;
        parsed.upload(Gpu::new().await?, format)
    }

    /// Loads `files` onto an existing device (several models can share one).
    pub fn with_gpu(gpu: Arc<Gpu>, files: ModelFiles) -> Result<Engine> {
        let parsed = ParsedFiles::parse(files)?;
        let format = parsed.stored_format;
        parsed.upload(gpu, format)
    }

    pub fn with_gpu_and_format(
        gpu: Arc<Gpu>,
        files: ModelFiles,
        format: WeightFormat,
    ) -> Result<Engine> {
        ParsedFiles::parse(files)?.upload(gpu, format)
    }

    /// Loads a model folder laid out as on the Hugging Face hub, or a Firefox Translations
    /// (Marian) model folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn load_dir(dir: impl AsRef<std::path::Path>) -> Result<Engine> {
        Engine::new(ModelFiles::read_dir(dir.as_ref())?).await
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.inner.gpu
    }

    pub fn model(&self) -> &Model {
        &self.inner.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.inner.tokenizer
    }

    /// The model's generation defaults (generation_config.json), before a caller's options.
    pub fn generation_defaults(&self) -> &GenerationOptions {
        &self.inner.defaults
    }

    /// The settings a generation with `options` would use, checked.
    pub fn resolve(&self, options: &GenerationOptions) -> Result<GenerationConfig> {
        GenerationConfig::resolve(
            &self.model().spec,
            &self.inner.defaults.overridden_by(options),
        )
    }

    /// Checks an input, and with `truncation` cuts one longer than the model can place to
    /// its limit, keeping the last token (the end-of-sentence mark tokenizers append), as
    /// transformers' tokenizers truncate.
    fn prepared_input(&self, input_ids: &[u32], truncation: bool) -> Result<Vec<u32>> {
        let vocab = self.model().spec.vocab_size;
        if let Some(bad) = input_ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::invalid(format!(
                "input token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        let Some(&last) = input_ids.last() else {
            return Err(Error::invalid("the input has no tokens"));
        };
        match self.model().spec.positions.limit() {
            Some(limit) if input_ids.len() > limit && truncation => {
                let mut kept = input_ids[..limit - 1].to_vec();
                kept.push(last);
                Ok(kept)
            }
            Some(limit) if input_ids.len() > limit => Err(Error::invalid(format!(
                "the input has {} tokens; this model places at most {limit} (pass truncation: true to cut it)",
                input_ids.len()
            ))),
            _ => Ok(input_ids.to_vec()),
        }
    }

    /// Starts generating from `prompt`; poll the result for text.
    pub fn start(&self, prompt: &str, options: &GenerationOptions) -> Result<Generation> {
        let ids = self.tokenizer().encode(prompt)?;
        self.start_from_ids(&ids, options)
    }

    /// Starts generating from encoder input ids.
    pub fn start_from_ids(
        &self,
        input_ids: &[u32],
        options: &GenerationOptions,
    ) -> Result<Generation> {
        let config = self.resolve(options)?;
        let input = self.prepared_input(input_ids, config.truncation)?;
        let streamed = config.num_beams == 1 && config.num_return_sequences == 1;
        let search = Search::new(self.gpu(), self.model(), &[input], config)?;
        Ok(Generation::new(self.clone(), search, streamed))
    }

    /// Generates to the end, passing each text piece to `on_text` as it is produced; returns
    /// every returned sequence, the best first.
    pub async fn generate(
        &self,
        prompt: &str,
        options: &GenerationOptions,
        on_text: impl FnMut(&str),
    ) -> Result<Vec<Generated>> {
        self.start(prompt, options)?.run(on_text).await
    }

    /// Generates for several prompts in one padded batch; each row stops on its own.
    /// Returns `num_return_sequences` sequences per prompt, in prompt order.
    pub async fn generate_batch(
        &self,
        prompts: &[&str],
        options: &GenerationOptions,
    ) -> Result<Vec<Generated>> {
        let inputs = prompts
            .iter()
            .map(|p| self.tokenizer().encode(p))
            .collect::<Result<Vec<_>>>()?;
        self.generate_batch_from_ids(&inputs, options).await
    }

    /// Like `generate_batch`, from encoder input ids.
    pub async fn generate_batch_from_ids(
        &self,
        inputs: &[Vec<u32>],
        options: &GenerationOptions,
    ) -> Result<Vec<Generated>> {
        if inputs.is_empty() {
            return Err(Error::invalid("no prompts to generate from"));
        }
        let config = self.resolve(options)?;
        let inputs = inputs
            .iter()
            .map(|input| self.prepared_input(input, config.truncation))
            .collect::<Result<Vec<_>>>()?;
        let search = Search::new(self.gpu(), self.model(), &inputs, config)?;
        generate::run_batch(self, search).await
    }
}

/// Model files parsed and checked, not yet on a device.
struct ParsedFiles {
    spec: ModelSpec,
    defaults: GenerationOptions,
    tokenizer: Tokenizer,
    weights: Box<dyn TensorSource>,
    shortlist: Option<Shortlist>,
    /// The precision the checkpoint keeps its weights in.
    stored_format: WeightFormat,
}

impl ParsedFiles {
    fn parse(files: ModelFiles) -> Result<ParsedFiles> {
        let tokenizer = Tokenizer::from_bytes(&files.tokenizer)?;
        match files.model {
            ModelData::HuggingFace {
                config,
                generation_config,
                weights,
            } => Ok(ParsedFiles {
                spec: ModelSpec::from_config_json(&config)?,
                defaults: GenerationConfig::model_defaults(generation_config.as_deref())?,
                tokenizer,
                weights: Box::new(Checkpoint::from_shards(weights)?),
                shortlist: None,
                stored_format: WeightFormat::F32,
            }),
            ModelData::Marian {
                model: (file, bytes),
                shortlist,
                max_length_factor,
            } => {
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
                    max_length_factor,
                    max_length: Some(MAX_POSITIONS),
                    ..GenerationOptions::default()
                };
                Ok(ParsedFiles {
                    tokenizer: tokenizer.with_end_of_sentence(spec.eos_token_ids[0]),
                    spec,
                    defaults,
                    weights: Box::new(MarianSource::new(bin)),
                    shortlist,
                    stored_format: WeightFormat::Int8,
                })
            }
        }
    }

    fn upload(self, gpu: Arc<Gpu>, format: WeightFormat) -> Result<Engine> {
        let mut model = Model::load(&gpu, self.spec, self.weights.as_ref(), format)?;
        model.shortlist = self.shortlist;
        Ok(Engine {
            inner: Arc::new(Inner {
                gpu,
                model,
                tokenizer: self.tokenizer,
                defaults: self.defaults,
            }),
        })
    }
}
