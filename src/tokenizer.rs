//! Text <-> token ids through Hugging Face's `tokenizers` (tokenizer.json).

use crate::error::{Error, Result};

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Appended to every input when the tokenizer itself does not add it (Marian models
    /// converted from SentencePiece end each source with `</s>` by convention).
    appended_eos: Option<u32>,
}

impl Tokenizer {
    pub fn from_bytes(bytes: &[u8]) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json could not be loaded: {e}")))?;
        Ok(Tokenizer {
            inner,
            appended_eos: None,
        })
    }

    /// Ends every encoded input with `eos`, and leaves it out of decoded text, for models
    /// whose tokenizer.json knows nothing of their end-of-sentence token.
    pub fn with_end_of_sentence(mut self, eos: u32) -> Tokenizer {
        self.appended_eos = Some(eos);
        self
    }

    /// Ids of `text` with the model's special tokens added (T5 appends `</s>`), as
    /// transformers' `tokenizer(text)` gives them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut ids = encoding.get_ids().to_vec();
        ids.extend(self.appended_eos);
        Ok(ids)
    }

    /// Text of `ids` with special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let kept: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| Some(id) != self.appended_eos)
            .collect();
        self.inner
            .decode(&kept, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Entries of the vocabulary (special tokens included).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
