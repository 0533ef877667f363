//! Text generation: greedy, sampling and beam search with transformers' logits processors,
//! for one prompt (streamed as whole-character text pieces) or a batch.

mod beam;
pub mod config;
pub(crate) mod continuous;
mod option_values;
pub mod options;
pub mod processors;
pub mod sampling;
pub(crate) mod search;
mod stopping;
pub mod stream;

pub use config::GenerationConfig;
pub use options::{EarlyStopping, GenerationOptions};
pub use search::run_ahead_steps;
pub use stream::TextStreamer;

use std::sync::Arc;

use crate::error::Result;
use crate::tokenizer::Tokenizer;
use search::Search;

/// One generated sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The whole decoder sequence as transformers' `generate` returns it: the decoder start
    /// token, then the generated tokens (ending with EOS if one was produced; padded after
    /// it when it is one row of a batch).
    pub ids: Vec<u32>,
    /// The generated text, special tokens skipped.
    pub text: String,
}

/// A generation in progress for one prompt: poll `next_piece` for text as it is produced.
/// Greedy and sampled text streams token by token; beam search (whose best sequence is
/// only known at the end) and several returned sequences deliver their text at the end.
pub struct Generation {
    tokenizer: Arc<Tokenizer>,
    search: Option<Search>,
    streamed: bool,
    streamer: TextStreamer,
    on_token: Option<Box<dyn FnMut(u32)>>,
    results: Vec<Generated>,
    done: bool,
}

impl Generation {
    pub(crate) fn new(tokenizer: Arc<Tokenizer>, search: Search, streamed: bool) -> Self {
        Generation {
            tokenizer,
            search: Some(search),
            streamed,
            streamer: TextStreamer::new(),
            on_token: None,
            results: Vec::new(),
            done: false,
        }
    }

    /// Calls `f` with each generated token id of the streamed sequence as soon as it is known.
    pub fn on_token(&mut self, f: impl FnMut(u32) + 'static) {
        self.on_token = Some(Box::new(f));
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
                    self.search = None;
                    return Some(Err(e));
                }
            }
        }
        None
    }

    async fn step(&mut self) -> Result<Option<String>> {
        let tokenizer = &*self.tokenizer;
        let Some(search) = &mut self.search else {
            self.done = true;
            return Ok(None);
        };
        if !search.is_done() {
            let appended = search.step(tokenizer).await?;
            return match (self.streamed, appended) {
                (true, Some(tokens)) => {
                    let token = tokens[0];
                    if let Some(on_token) = &mut self.on_token {
                        on_token(token);
                    }
                    self.streamer.push(tokenizer, token)
                }
                _ => Ok(None),
            };
        }
        // Finished: collect the results and deliver the rest of the text.
        let search = self.search.take().expect("checked above");
        self.done = true;
        self.results = decode_all(tokenizer, search.into_sequences())?;
        if !self.streamed {
            for &id in self.results[0].ids.iter().skip(1) {
                if let Some(on_token) = &mut self.on_token {
                    on_token(id);
                }
                self.streamer.push(tokenizer, id)?;
            }
        }
        self.streamer.finish(tokenizer)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Every returned sequence (several with `num_return_sequences`), once done.
    pub fn results(&self) -> &[Generated] {
        &self.results
    }

    /// Drives the generation to its end, passing each text piece to `on_text`; returns every
    /// returned sequence (the first is the best).
    pub async fn run(mut self, mut on_text: impl FnMut(&str)) -> Result<Vec<Generated>> {
        while let Some(piece) = self.next_piece().await {
            on_text(&piece?);
        }
        Ok(self.results)
    }
}

/// Generates for a batch of encoder inputs at once (no streaming).
pub(crate) async fn run_batch(tokenizer: &Tokenizer, mut search: Search) -> Result<Vec<Generated>> {
    while !search.is_done() {
        search.step(tokenizer).await?;
    }
    decode_all(tokenizer, search.into_sequences())
}

fn decode_all(tokenizer: &Tokenizer, sequences: Vec<Vec<u32>>) -> Result<Vec<Generated>> {
    sequences
        .into_iter()
        .map(|ids| {
            Ok(Generated {
                text: tokenizer.decode(&ids)?,
                ids,
            })
        })
        .collect()
}
