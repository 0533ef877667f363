//! What turns text into ids for a tokenizer: a `tokenizers` pipeline, SentencePiece's pieces
//! looked up in vocab.json, or ByT5's bytes.

use super::byt5::ByT5;
use super::mapped::Mapped;
use crate::error::{Error, Result};

fn tokenizer_error(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

/// How text becomes ids.
pub enum Backend {
    /// A `tokenizers` pipeline whose ids are the model's.
    Pipeline(tokenizers::Tokenizer),
    /// SentencePiece's pieces looked up in vocab.json.
    Mapped(Mapped),
    ByT5(ByT5),
}

impl Backend {
    /// The ids of `text`; a pipeline adds its post-processor's specials when `framed`.
    pub fn encode(&self, text: &str, framed: bool) -> Result<Vec<u32>> {
        match self {
            Backend::Pipeline(tokenizer) => Ok(tokenizer
                .encode(text, framed)
                .map_err(tokenizer_error)?
                .get_ids()
                .to_vec()),
            Backend::Mapped(mapped) => mapped.encode(text),
            Backend::ByT5(byt5) => byt5.encode(text),
        }
    }

    /// The text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(match self {
            Backend::Pipeline(tokenizer) => tokenizer.decode(ids, true).map_err(tokenizer_error)?,
            Backend::Mapped(mapped) => mapped.decode(ids),
            Backend::ByT5(byt5) => byt5.decode(ids),
        })
    }

    /// Entries of the vocabulary, special tokens included.
    pub fn vocab_size(&self) -> usize {
        match self {
            Backend::Pipeline(tokenizer) => tokenizer.get_vocab_size(true),
            Backend::Mapped(mapped) => mapped.vocab_size(),
            Backend::ByT5(byt5) => byt5.vocab_size(),
        }
    }

    pub fn id_of(&self, token: &str) -> Option<u32> {
        match self {
            Backend::Pipeline(tokenizer) => tokenizer.token_to_id(token),
            Backend::Mapped(mapped) => mapped.id_of(token),
            Backend::ByT5(byt5) => byt5.id_of(token),
        }
    }
}
