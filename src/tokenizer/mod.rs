//! Text <-> token ids, as transformers' tokenizer for the same folder gives them: from
//! tokenizer.json where a folder has one, else from the vocabulary files of its tokenizer
//! class (SentencePiece models, vocab.json with merges.txt or with SentencePiece pieces,
//! ByT5's bytes), with what tokenizer_config.json and special_tokens_map.json add, and with
//! the language codes of multilingual families.

mod added;
mod backend;
mod byt5;
mod families;
mod language_codes;
pub mod languages;
mod mapped;
mod pipelines;
mod settings;

use backend::Backend;
use families::Framing;
pub use languages::{Languages, TargetRule};

use crate::error::{Error, Result};
use crate::formats::layout::TokenizerFiles;

pub struct Tokenizer {
    backend: Backend,
    framing: Framing,
    /// Appended to every input when the tokenizer itself does not add it (Firefox
    /// Translations' tokenizer.json ends no source with `</s>`), and left out of decoded text.
    appended_eos: Option<u32>,
}

/// The error of a language option for a tokenizer without language codes.
pub fn no_languages() -> Error {
    Error::invalid(
        "this model's tokenizer has no language codes (a multilingual Marian model takes the target language as >>xx<< at the start of the text)",
    )
}

impl Tokenizer {
    /// The tokenizer of a folder's `files`; `model_type` (config.json's) names the class when
    /// tokenizer_config.json does not.
    pub fn from_files(files: &TokenizerFiles, model_type: Option<&str>) -> Result<Tokenizer> {
        let settings = settings::Settings::read(files, model_type)?;
        let built = families::build(files, &settings)?;
        Ok(Tokenizer {
            backend: built.backend,
            framing: built.framing,
            appended_eos: None,
        })
    }

    /// A tokenizer.json alone.
    pub fn from_bytes(bytes: &[u8]) -> Result<Tokenizer> {
        Tokenizer::from_files(
            &TokenizerFiles::new(vec![("tokenizer.json".into(), bytes.to_vec())]),
            None,
        )
    }

    /// Ends every encoded input with `eos`, and leaves it out of decoded text, for models
    /// whose tokenizer.json knows nothing of their end-of-sentence token.
    pub fn with_end_of_sentence(mut self, eos: u32) -> Tokenizer {
        self.appended_eos = Some(eos);
        self
    }

    /// The languages of a multilingual tokenizer.
    pub fn languages(&self) -> Option<&Languages> {
        match &self.framing {
            Framing::Languages { languages, .. } => Some(languages),
            _ => None,
        }
    }

    /// Ids of `text` with the model's special tokens added (T5 appends `</s>`), as
    /// transformers' `tokenizer(text)` gives them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_in(text, None)
    }

    /// Like [`Tokenizer::encode`], with the text in language `source` (a code of
    /// [`Tokenizer::languages`]; the tokenizer's default without one).
    pub fn encode_in(&self, text: &str, source: Option<&str>) -> Result<Vec<u32>> {
        if source.is_some() && self.languages().is_none() {
            return Err(no_languages());
        }
        let builtin = matches!(self.framing, Framing::Builtin);
        let own = self.backend.encode(text, builtin)?;
        let mut ids = match &self.framing {
            Framing::Builtin => own,
            Framing::Around { prefix, suffix } => {
                prefix.iter().chain(&own).chain(suffix).copied().collect()
            }
            Framing::Languages { languages, eos } => languages.frame(source, own, *eos)?,
        };
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
        self.backend.decode(&kept)
    }

    /// Entries of the vocabulary (special tokens included).
    pub fn vocab_size(&self) -> usize {
        self.backend.vocab_size()
    }
}
