//! Incremental detokenisation: turns a growing list of token ids into text pieces that are
//! always whole characters and that concatenate to the final decoded text.

use crate::error::Result;
use crate::tokenizer::Tokenizer;

/// Decodes the whole sequence at each step (cheap at generation lengths) and emits what
/// was added, holding text back while it ends in an incomplete byte sequence (U+FFFD from a
/// byte-level or byte-fallback token split inside a character) or while a decoder rule
/// rewrote text already emitted.
#[derive(Default)]
pub struct TextStreamer {
    ids: Vec<u32>,
    emitted: String,
}

impl TextStreamer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a generated token; returns the new text, if any is complete.
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        let text = tokenizer.decode(&self.ids)?;
        if text.ends_with('\u{FFFD}') {
            return Ok(None);
        }
        Ok(self.advance(text))
    }

    /// The remaining text once generation has ended.
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> Result<Option<String>> {
        let text = tokenizer.decode(&self.ids)?;
        Ok(self.advance(text))
    }

    fn advance(&mut self, text: String) -> Option<String> {
        let piece = text.strip_prefix(self.emitted.as_str())?;
        if piece.is_empty() {
            return None;
        }
        let piece = piece.to_string();
        self.emitted = text;
        Some(piece)
    }
}
