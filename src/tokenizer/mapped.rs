//! Tokenizers that transformers runs on the sentencepiece library itself (Marian, M2M100):
//! the text is split into SentencePiece's pieces, and each piece is looked up in the
//! folder's `vocab.json` (a piece missing from it is `<unk>`). Decoding joins the pieces
//! back, as the library does.

use std::collections::{HashMap, HashSet};

use super::pipelines::{SPACE, library_piece};
use crate::error::{Error, Result};

pub struct Mapped {
    /// Segments text into SentencePiece's pieces (special tokens first).
    pieces: tokenizers::Tokenizer,
    vocab: HashMap<String, u32>,
    /// Ids above vocab.json's (M2M100's language tokens).
    extra: HashMap<String, u32>,
    names: HashMap<u32, String>,
    unk: u32,
    /// Ids decoding skips.
    special: HashSet<u32>,
    /// Marian: a leading `>>xx<<` is a target-language token, kept whole.
    language_prefix: bool,
}

impl Mapped {
    pub fn new(
        pieces: tokenizers::Tokenizer,
        vocab: HashMap<String, u32>,
        extra: HashMap<String, u32>,
        specials: &[String],
        language_prefix: bool,
    ) -> Result<Mapped> {
        let unk = *vocab
            .get("<unk>")
            .ok_or_else(|| Error::format("vocab.json", "has no <unk> token"))?;
        let names = vocab
            .iter()
            .chain(&extra)
            .map(|(piece, &id)| (id, piece.clone()))
            .collect();
        let special = specials
            .iter()
            .filter_map(|s| vocab.get(s).or_else(|| extra.get(s)).copied())
            .chain(extra.values().copied())
            .collect();
        Ok(Mapped {
            pieces,
            vocab,
            extra,
            names,
            unk,
            special,
            language_prefix,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len() + self.extra.len()
    }

    pub fn id_of(&self, token: &str) -> Option<u32> {
        self.vocab
            .get(token)
            .or_else(|| self.extra.get(token))
            .copied()
    }

    fn lookup(&self, piece: &str) -> u32 {
        self.id_of(piece).unwrap_or(self.unk)
    }

    /// The ids of `text`, without the specials its family adds around it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let mut text = text;
        if self.language_prefix
            && text.starts_with(">>")
            && let Some(end) = text.find("<<")
        {
            ids.push(self.lookup(&text[..end + 2]));
            text = &text[end + 2..];
        }
        let encoding = self
            .pieces
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        for &id in encoding.get_ids() {
            let token = self.pieces.id_to_token(id).unwrap_or_default();
            ids.push(self.lookup(library_piece(&token)));
        }
        Ok(ids)
    }

    /// The text of `ids`, special tokens skipped: the pieces joined, SentencePiece's space
    /// marks turned back into spaces, the ends trimmed.
    pub fn decode(&self, ids: &[u32]) -> String {
        let joined: String = ids
            .iter()
            .filter(|id| !self.special.contains(id))
            .filter_map(|id| self.names.get(id).map(String::as_str))
            .collect();
        joined.replace(SPACE, " ").trim().to_string()
    }
}
