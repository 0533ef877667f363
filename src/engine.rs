//! The public entry point: a loaded model with its tokenizer on one GPU.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::formats::FileSource;
use crate::generate::search::Search;
use crate::generate::{self, Generated, Generation, GenerationConfig, GenerationOptions};
use crate::gpu::{Gpu, GpuOptions};
use crate::load::{LoadedFiles, load_files};
use crate::model::{Model, WeightFormat};
use crate::tokenizer::{TargetRule, Tokenizer, no_languages};

struct Inner {
    gpu: Arc<Gpu>,
    model: Model,
    tokenizer: Arc<Tokenizer>,
    defaults: GenerationOptions,
}

/// A model ready to generate. Cloning is cheap and shares the model.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// How to load a model.
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// How linear-layer weights are kept on the GPU (f16 halves their memory, int8 quarters
    /// it); `None` keeps the checkpoint's precision (f32 for floating-point checkpoints, int8
    /// for Marian's quantised models).
    pub weights: Option<WeightFormat>,
    /// The device to load onto (several models can share one); `None` creates one.
    pub gpu: Option<Arc<Gpu>>,
    /// How that device is created when `gpu` is `None` (a buffer limit below the adapter's
    /// simulates a smaller one).
    pub gpu_options: GpuOptions,
}

impl Engine {
    /// Loads a model folder from any source: a Hugging Face hub layout or a Firefox
    /// Translations (Marian) folder. Every file is read and checked before a device is
    /// created; a Hugging Face folder's config and tokenizer before its weights are read (a
    /// Marian model's architecture is inside its weights file).
    pub async fn load(source: &impl FileSource, options: &LoadOptions) -> Result<Engine> {
        let files = load_files(source).await?;
        let gpu = match &options.gpu {
            Some(gpu) => gpu.clone(),
            None => Gpu::with_options(options.gpu_options).await?,
        };
        let format = options.weights.unwrap_or(files.stored_format);
        Engine::upload(files, gpu, format).await
    }

    /// Loads a model folder on disk onto a new device.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn load_dir(dir: impl AsRef<std::path::Path>) -> Result<Engine> {
        let source = crate::formats::DirSource::new(dir.as_ref())?;
        Engine::load(&source, &LoadOptions::default()).await
    }

    async fn upload<S: FileSource>(
        files: LoadedFiles<S>,
        gpu: Arc<Gpu>,
        format: WeightFormat,
    ) -> Result<Engine> {
        let mut model = Model::load(&gpu, files.spec, &files.weights, format).await?;
        model.shortlist = files.shortlist;
        Ok(Engine {
            inner: Arc::new(Inner {
                gpu,
                model,
                tokenizer: Arc::new(files.tokenizer),
                defaults: files.defaults,
            }),
        })
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
        let language = self.target_language(options)?;
        GenerationConfig::resolve(
            &self.model().spec,
            &[options, &language, &self.inner.defaults],
        )
    }

    /// What the target language asks of generation: its code as the first generated token,
    /// or as the decoder's start (mBART-25). An explicit `forced_bos_token_id` still wins.
    fn target_language(&self, options: &GenerationOptions) -> Result<GenerationOptions> {
        let defaults = &self.inner.defaults;
        let Some(target) = options.tgt_lang.as_ref().or(defaults.tgt_lang.as_ref()) else {
            return Ok(GenerationOptions::default());
        };
        let languages = self.tokenizer().languages().ok_or_else(no_languages)?;
        let id = languages.id(target)?;
        Ok(match languages.target_rule() {
            TargetRule::ForcedBos => GenerationOptions {
                forced_bos_token_id: Some(id),
                ..GenerationOptions::default()
            },
            TargetRule::DecoderStart => GenerationOptions {
                decoder_start_token_id: Some(id),
                ..GenerationOptions::default()
            },
        })
    }

    /// The ids of `prompt` in the options' source language.
    pub(crate) fn encode(&self, prompt: &str, options: &GenerationOptions) -> Result<Vec<u32>> {
        let source = options
            .src_lang
            .as_deref()
            .or(self.inner.defaults.src_lang.as_deref());
        self.tokenizer().encode_in(prompt, source)
    }

    /// Checks an input, and with `truncation` cuts one longer than the model can place to
    /// its limit, keeping the last token (the end-of-sentence mark tokenizers append), as
    /// transformers' tokenizers truncate.
    pub(crate) fn prepared_input(&self, input_ids: &[u32], truncation: bool) -> Result<Vec<u32>> {
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
        let ids = self.encode(prompt, options)?;
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
        Ok(Generation::new(
            self.inner.tokenizer.clone(),
            search,
            streamed,
        ))
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
            .map(|p| self.encode(p, options))
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
        generate::run_batch(self.tokenizer(), search).await
    }
}
