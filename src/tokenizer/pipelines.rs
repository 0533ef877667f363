//! `tokenizers` pipelines built from vocabulary files, the way transformers builds them:
//! SentencePiece models as Unigram or BPE models behind SentencePiece's normaliser and
//! whitespace handling, and GPT-2 style byte-level BPE from `vocab.json` and `merges.txt`.

use std::collections::HashMap;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::{Precompiled, Replace, Sequence, Strip};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::{AddedToken, NormalizerWrapper, PreTokenizerWrapper, Tokenizer};

use crate::error::{Error, Result};
use crate::formats::sentencepiece::{PieceKind, SentencePiece};

pub const SPACE: char = '▁';

fn build_error(file: &str) -> impl Fn(Box<dyn std::error::Error + Send + Sync>) -> Error + '_ {
    move |e| Error::Tokenizer(format!("{file}: {e}"))
}

/// A special token as transformers adds it: matched on the raw text, never split.
pub fn special(text: &str) -> AddedToken {
    AddedToken::from(text, true).normalized(false)
}

/// How SentencePiece's whitespace rules are reproduced in front of the model.
#[derive(Clone, Copy)]
pub enum Whitespace {
    /// `WhitespaceSplit` before the metaspace (transformers' T5 and mT5).
    SplitWords,
    /// Runs of spaces collapsed to one by the normaliser (mBART-50, Pegasus, NLLB).
    CollapseRuns,
    /// Trimmed and collapsed, as the sentencepiece library does (Marian, M2M100).
    Library,
}

fn normalizer(
    spm: &SentencePiece,
    file: &str,
    whitespace: Whitespace,
) -> Result<Option<NormalizerWrapper>> {
    let mut steps: Vec<NormalizerWrapper> = Vec::new();
    if !spm.charsmap.is_empty() {
        let precompiled = Precompiled::from(&spm.charsmap)
            .map_err(|e| Error::Tokenizer(format!("{file}: its normaliser table: {e}")))?;
        steps.push(precompiled.into());
    }
    let runs = || {
        Replace::new(
            tokenizers::normalizers::replace::ReplacePattern::Regex(" {2,}".into()),
            " ",
        )
        .map_err(build_error(file))
    };
    match whitespace {
        Whitespace::SplitWords => {}
        Whitespace::CollapseRuns => steps.push(runs()?.into()),
        Whitespace::Library => {
            steps.push(Strip::new(true, true).into());
            steps.push(runs()?.into());
        }
    }
    Ok(match steps.len() {
        0 => None,
        1 => steps.pop(),
        _ => Some(Sequence::new(steps).into()),
    })
}

fn metaspace() -> Metaspace {
    Metaspace::new(SPACE, PrependScheme::Always, true)
}

/// A pipeline over a SentencePiece model with `vocab` (pieces and scores in id order) and its
/// normaliser, before specials are added.
pub fn sentencepiece(
    spm: &SentencePiece,
    file: &str,
    vocab: Vec<(String, f64)>,
    unk_id: u32,
    whitespace: Whitespace,
) -> Result<Tokenizer> {
    let mut tokenizer = if spm.unigram {
        Tokenizer::new(
            Unigram::from(vocab, Some(unk_id as usize), spm.byte_fallback)
                .map_err(build_error(file))?,
        )
    } else {
        let pieces: Vec<String> = vocab.into_iter().map(|(p, _)| p).collect();
        let unk = pieces
            .get(unk_id as usize)
            .cloned()
            .ok_or_else(|| Error::Tokenizer(format!("{file}: no unknown piece")))?;
        let merges = merges_of(&pieces);
        let ids: Vocab = pieces.into_iter().zip(0..).collect();
        Tokenizer::new(
            BPE::builder()
                .vocab_and_merges(ids, merges)
                .unk_token(unk)
                .fuse_unk(true)
                .byte_fallback(spm.byte_fallback)
                .build()
                .map_err(build_error(file))?,
        )
    };
    tokenizer.with_normalizer(normalizer(spm, file, whitespace)?);
    let pre: PreTokenizerWrapper = match whitespace {
        Whitespace::SplitWords => {
            PreSequence::new(vec![WhitespaceSplit.into(), metaspace().into()]).into()
        }
        _ => metaspace().into(),
    };
    tokenizer.with_pre_tokenizer(Some(pre));
    tokenizer.with_decoder(Some(MetaspaceDecoder::new(
        SPACE,
        PrependScheme::Always,
        true,
    )));
    Ok(tokenizer)
}

/// The pieces of a SentencePiece model as the sentencepiece library segments text: its control
/// and unknown pieces are never matched in text, so they get names no text can hold (the
/// pre-tokenizer has replaced every space by then). Callers map the ids they see back to the
/// model's own piece names with [`library_piece`].
pub fn library_vocab(spm: &SentencePiece) -> Vec<(String, f64)> {
    spm.pieces
        .iter()
        .map(|p| {
            let hidden =
                p.kind == PieceKind::Control || (spm.unigram && p.kind == PieceKind::Unknown);
            let text = if hidden {
                format!(" {}", p.text)
            } else {
                p.text.clone()
            };
            (text, p.score as f64)
        })
        .collect()
}

/// The piece name of a token of a [`library_vocab`] pipeline.
pub fn library_piece(token: &str) -> &str {
    token.strip_prefix(' ').unwrap_or(token)
}

/// BPE merges from a vocabulary alone, as transformers derives them for SentencePiece BPE
/// models (`generate_merges`): every split of a piece into two pieces, ordered by the id of
/// the piece they make, then by the lengths of the halves.
fn merges_of(pieces: &[String]) -> Vec<(String, String)> {
    let id: HashMap<&str, usize> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let mut merges: Vec<(usize, usize, usize, usize, usize)> = Vec::new();
    for (merged, piece) in pieces.iter().enumerate() {
        let mut local: Vec<(usize, usize, usize, usize, usize)> = piece
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (left, right) = piece.split_at(at);
                Some((
                    merged,
                    left.chars().count(),
                    right.chars().count(),
                    *id.get(left)?,
                    *id.get(right)?,
                ))
            })
            .collect();
        local.sort_by_key(|&(_, _, _, l, r)| (l, r));
        merges.extend(local);
    }
    merges.sort_by_key(|&(merged, left, right, _, _)| (merged, left, right));
    merges
        .into_iter()
        .map(|(_, _, _, l, r)| (pieces[l].clone(), pieces[r].clone()))
        .collect()
}

/// GPT-2 style byte-level BPE (BART, RoBERTa) from `vocab.json` and `merges.txt`.
pub fn byte_level_bpe(vocab_json: &[u8], merges_txt: &[u8]) -> Result<Tokenizer> {
    let vocab: HashMap<String, u32> = serde_json::from_slice(vocab_json)
        .map_err(|e| Error::format("vocab.json", format!("not a token-to-id map: {e}")))?;
    let text = std::str::from_utf8(merges_txt)
        .map_err(|_| Error::format("merges.txt", "not UTF-8 text"))?;
    let mut merges = Vec::new();
    for (number, line) in text.lines().enumerate() {
        // The first line may be a "#version" header.
        if line.trim().is_empty() || (number == 0 && line.starts_with("#version")) {
            continue;
        }
        match line.split_once(' ') {
            Some((left, right)) if !right.contains(' ') => {
                merges.push((left.to_string(), right.to_string()))
            }
            _ => {
                return Err(Error::format(
                    "merges.txt",
                    format!("line {} is not two tokens: {line:?}", number + 1),
                ));
            }
        }
    }
    let mut tokenizer = Tokenizer::new(
        BPE::builder()
            .vocab_and_merges(vocab.into_iter().collect::<Vocab>(), merges)
            .build()
            .map_err(build_error("vocab.json"))?,
    );
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(tokenizer)
}
