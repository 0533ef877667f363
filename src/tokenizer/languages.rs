//! Source and target languages of multilingual tokenizers: each names its languages with its
//! own codes (`en_XX`, `en`, `eng_Latn`), puts the source language's token where its family
//! does, and tells generation how the target language is asked for.

use crate::error::{Error, Result};

/// Where the source language's token goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourcePlacement {
    /// `[code] text </s>` (mBART-50, M2M100, NLLB).
    First,
    /// `text </s> [code]` (mBART-25, NLLB's legacy behaviour).
    AfterEos,
}

/// How a generation is steered to the target language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetRule {
    /// The first generated token is forced to the target code (`forced_bos_token_id`).
    ForcedBos,
    /// The decoder starts from the target code (`decoder_start_token_id`, mBART-25).
    DecoderStart,
}

#[derive(Clone, Debug)]
pub struct Languages {
    /// Each code as callers give it, with its token's id.
    codes: Vec<(String, u32)>,
    default_source: String,
    placement: SourcePlacement,
    target: TargetRule,
}

impl Languages {
    pub fn new(
        codes: Vec<(String, u32)>,
        default_source: String,
        placement: SourcePlacement,
        target: TargetRule,
    ) -> Languages {
        Languages {
            codes,
            default_source,
            placement,
            target,
        }
    }

    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().map(|(code, _)| code.as_str())
    }

    pub fn target_rule(&self) -> TargetRule {
        self.target
    }

    /// The token id of `code`; an unknown code is refused with the valid ones.
    pub fn id(&self, code: &str) -> Result<u32> {
        self.codes
            .iter()
            .find(|(c, _)| c == code)
            .map(|&(_, id)| id)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown language code \"{code}\" (this model's codes: {})",
                    self.codes().collect::<Vec<_>>().join(", ")
                ))
            })
    }

    /// The ids of a text in `source` (or the tokenizer's default language).
    pub fn frame(&self, source: Option<&str>, text: Vec<u32>, eos: u32) -> Result<Vec<u32>> {
        let code = self.id(source.unwrap_or(&self.default_source))?;
        Ok(match self.placement {
            SourcePlacement::First => std::iter::once(code).chain(text).chain([eos]).collect(),
            SourcePlacement::AfterEos => text.into_iter().chain([eos, code]).collect(),
        })
    }
}
