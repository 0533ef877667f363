//! SentencePiece model files (`spiece.model`, `sentencepiece.bpe.model`, Marian's `*.spm`): the
//! protobuf read with the `sentencepiece-model` crate into the pieces, their scores and kinds,
//! the segmentation algorithm and the normalisation table.

use sentencepiece_model::{ModelType, SentencePieceModel, Type};

use crate::error::{Error, Result};

/// What a piece is to SentencePiece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceKind {
    Normal,
    /// `<unk>`: never matched in text.
    Unknown,
    /// `<s>`, `</s>`, ...: never matched in text.
    Control,
    /// Always matched in text, as one piece.
    UserDefined,
    /// `<0x41>` and the like, with byte fallback.
    Byte,
    Unused,
}

#[derive(Clone, Debug)]
pub struct Piece {
    pub text: String,
    pub score: f32,
    pub kind: PieceKind,
}

#[derive(Clone, Debug)]
pub struct SentencePiece {
    pub pieces: Vec<Piece>,
    /// Unigram segmentation (else BPE).
    pub unigram: bool,
    pub unk_id: u32,
    pub byte_fallback: bool,
    /// The normaliser's compiled character map (`nmt_nfkc` and the like); empty for identity.
    pub charsmap: Vec<u8>,
}

impl SentencePiece {
    /// Reads `bytes` of the model file `file`.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<SentencePiece> {
        let bad = |message: String| Error::format(file, message);
        let model = SentencePieceModel::from_slice(bytes)
            .map_err(|e| bad(format!("not a SentencePiece model: {e}")))?;
        let trainer = model
            .trainer()
            .ok_or_else(|| bad("the model has no trainer spec".into()))?;
        let unigram = match trainer.model_type() {
            ModelType::Unigram => true,
            ModelType::Bpe => false,
            other => {
                return Err(bad(format!(
                    "{} models are not supported (only unigram and BPE)",
                    other.as_str_name()
                )));
            }
        };
        let pieces: Vec<Piece> = model
            .pieces()
            .iter()
            .map(|p| Piece {
                text: p.piece().to_string(),
                score: p.score(),
                kind: match p.r#type() {
                    Type::Normal => PieceKind::Normal,
                    Type::Unknown => PieceKind::Unknown,
                    Type::Control => PieceKind::Control,
                    Type::UserDefined => PieceKind::UserDefined,
                    Type::Byte => PieceKind::Byte,
                    Type::Unused => PieceKind::Unused,
                },
            })
            .collect();
        if pieces.is_empty() || pieces.iter().any(|p| p.text.is_empty()) {
            return Err(bad("the model has no pieces, or an empty one".into()));
        }
        let unk_id = u32::try_from(trainer.unk_id())
            .ok()
            .filter(|&id| (id as usize) < pieces.len())
            .ok_or_else(|| bad(format!("unk_id {} is not a piece", trainer.unk_id())))?;
        Ok(SentencePiece {
            unigram,
            unk_id,
            byte_fallback: trainer.byte_fallback(),
            charsmap: model
                .normalizer()
                .map(|n| n.precompiled_charsmap().to_vec())
                .unwrap_or_default(),
            pieces,
        })
    }
}
