//! Text generation: greedy decoding on the GPU with a streamed, whole-character output.

pub mod options;
pub mod stream;

pub use options::{GenerationConfig, GenerationOptions};
pub use stream::TextStreamer;

use crate::engine::Engine;
use crate::error::Result;
use crate::model::{Decoder, Encoded};

/// The result of a finished generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The whole decoder sequence as transformers' `generate` returns it: the decoder start
    /// token, then the generated tokens (ending with EOS if one was produced).
    pub ids: Vec<u32>,
    /// The generated text, special tokens skipped.
    pub text: String,
}

/// A generation in progress: poll `next_piece` for text as tokens are produced.
pub struct Generation {
    engine: Engine,
    // Field order matters: the decoder reads the encoder's buffers, so it is dropped first.
    decoder: Decoder,
    _encoded: Encoded,
    config: GenerationConfig,
    ids: Vec<u32>,
    streamer: TextStreamer,
    on_token: Option<Box<dyn FnMut(u32)>>,
    done: bool,
}

impl Generation {
    pub(crate) fn new(
        engine: Engine,
        encoded: Encoded,
        decoder: Decoder,
        config: GenerationConfig,
    ) -> Result<Self> {
        decoder.set_ids(&[config.decoder_start_token_id])?;
        Ok(Generation {
            engine,
            decoder,
            _encoded: encoded,
            ids: vec![config.decoder_start_token_id],
            config,
            streamer: TextStreamer::new(),
            on_token: None,
            done: false,
        })
    }

    /// Runs decode steps until a piece of text is ready; `None` once generation has ended
    /// and all text was delivered.
    pub async fn next_piece(&mut self) -> Option<Result<String>> {
        while !self.done {
            match self.step().await {
                Ok(Some(piece)) => return Some(Ok(piece)),
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }

    /// One decode step (or the final flush); returns new text if any.
    async fn step(&mut self) -> Result<Option<String>> {
        let generated = self.ids.len() - 1;
        let at_eos = generated > 0
            && self
                .config
                .eos_token_ids
                .contains(self.ids.last().unwrap_or(&0));
        if at_eos || generated >= self.config.max_new_tokens {
            self.done = true;
            return self.streamer.finish(self.engine.tokenizer());
        }
        let token = self.decoder.step(generated).await?[0];
        self.ids.push(token);
        if let Some(on_token) = &mut self.on_token {
            on_token(token);
        }
        self.streamer.push(self.engine.tokenizer(), token)
    }

    /// Calls `f` with each generated token id as soon as it is known.
    pub fn on_token(&mut self, f: impl FnMut(u32) + 'static) {
        self.on_token = Some(Box::new(f));
    }

    /// The decoder sequence so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Drives the generation to its end, passing each text piece to `on_text`.
    pub async fn run(mut self, mut on_text: impl FnMut(&str)) -> Result<Generated> {
        while let Some(piece) = self.next_piece().await {
            on_text(&piece?);
        }
        self.result()
    }

    /// The sequence and text generated so far (all of it once done).
    pub fn result(&self) -> Result<Generated> {
        Ok(Generated {
            text: self.engine.tokenizer().decode(&self.ids)?,
            ids: self.ids.clone(),
        })
    }
}
