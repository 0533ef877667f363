//! One builder per tokenizer class of transformers, from the files its repos ship: which
//! vocabulary, in which id order, with which specials, and which ids go around an input.
//! `tokenizer.json` wins wherever a folder has one; the rest follows transformers 5's
//! classes (`T5Tokenizer`, `MBart50Tokenizer`, ... and the converters they use).

use std::collections::HashMap;

use super::added::add_declared;
use super::backend::Backend;
use super::byt5::ByT5;
use super::language_codes::{M2M100, MBART, MBART50, NLLB, WMT21};
use super::languages::{Languages, SourcePlacement, TargetRule};
use super::mapped::Mapped;
use super::pipelines::{self, Whitespace, special};
use super::settings::Settings;
use crate::error::{Error, Result};
use crate::formats::layout::TokenizerFiles;
use crate::formats::sentencepiece::SentencePiece;

/// The ids around an input's own.
pub enum Framing {
    /// tokenizer.json's post-processor adds them.
    Builtin,
    Around {
        prefix: Vec<u32>,
        suffix: Vec<u32>,
    },
    /// `[code] text </s>` and the like, with the source language's code.
    Languages {
        languages: Languages,
        eos: u32,
    },
}

pub struct Built {
    pub backend: Backend,
    pub framing: Framing,
}

fn required<'f>(files: &'f TokenizerFiles, name: &str, class: &str) -> Result<&'f [u8]> {
    files.get(name).ok_or_else(|| {
        Error::Tokenizer(format!(
            "a {class} needs {name} (the folder has {})",
            files.names().join(", ")
        ))
    })
}

fn spm(files: &TokenizerFiles, name: &str, class: &str) -> Result<SentencePiece> {
    SentencePiece::parse(name, required(files, name, class)?)
}

fn json_ids(name: &str, bytes: &[u8]) -> Result<HashMap<String, u32>> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::format(name, format!("not a token-to-id map: {e}")))
}

fn add_specials(tokenizer: &mut tokenizers::Tokenizer, specials: &[String]) {
    let tokens: Vec<_> = specials.iter().map(|s| special(s)).collect();
    tokenizer.add_special_tokens(&tokens);
}

fn id_of(tokenizer: &tokenizers::Tokenizer, token: &str) -> Result<u32> {
    tokenizer
        .token_to_id(token)
        .ok_or_else(|| Error::Tokenizer(format!("the vocabulary has no {token}")))
}

/// A folder's tokenizer: tokenizer.json as it is (with its family's language rules), or
/// the class's vocabulary files.
pub fn build(files: &TokenizerFiles, settings: &Settings) -> Result<Built> {
    let class = settings.class().unwrap_or("");
    if let Some(json) = files.get("tokenizer.json") {
        let tokenizer = tokenizers::Tokenizer::from_bytes(json)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json could not be loaded: {e}")))?;
        return from_tokenizer_json(tokenizer, class, settings);
    }
    let mut built = from_vocabulary_files(files, settings, class)?;
    add_declared(&mut built.backend, settings.added_tokens(), class)?;
    Ok(built)
}

fn from_vocabulary_files(
    files: &TokenizerFiles,
    settings: &Settings,
    class: &str,
) -> Result<Built> {
    if let Some(layout) = FairseqLayout::of_class(class) {
        return fairseq(files, settings, layout);
    }
    match class {
        "T5Tokenizer" | "MT5Tokenizer" => t5(files, settings),
        "PegasusTokenizer" => pegasus(files, settings),
        "BartTokenizer" | "RobertaTokenizer" => roberta(files),
        "M2M100Tokenizer" => m2m100(files, settings),
        "MarianTokenizer" => marian(files, settings),
        "ByT5Tokenizer" => Ok(Built {
            backend: Backend::ByT5(ByT5::new(
                &settings.token("pad_token", "<pad>"),
                &settings.token("eos_token", "</s>"),
                &settings.token("unk_token", "<unk>"),
                settings.usize("extra_ids", 125)?,
            )),
            framing: Framing::Builtin,
        }),
        "" => Err(Error::Tokenizer(format!(
            "no tokenizer.json, and no tokenizer class to build one from the folder's files ({})",
            files.names().join(", ")
        ))),
        other => Err(Error::Tokenizer(format!(
            "{other} without a tokenizer.json is not supported (T5, mT5, ByT5, Pegasus, BART, mBART, mBART-50, NLLB, M2M100 and Marian tokenizers are)"
        ))),
    }
}

/// The language rules a tokenizer.json of a multilingual class keeps outside its file: the
/// file's post-processor is written for one source language.
fn from_tokenizer_json(
    tokenizer: tokenizers::Tokenizer,
    class: &str,
    settings: &Settings,
) -> Result<Built> {
    // A tokenizer.json without its family's codes (a model trained without languages) is used
    // as it is.
    let layout = FairseqLayout::of_class(class).filter(|layout| {
        layout
            .codes()
            .iter()
            .all(|c| tokenizer.token_to_id(c).is_some())
    });
    let framing = match layout {
        None => Framing::Builtin,
        Some(layout) => layout.framing(&tokenizer, settings)?,
    };
    Ok(Built {
        backend: Backend::Pipeline(tokenizer),
        framing,
    })
}

fn nllb_placement(settings: &Settings) -> SourcePlacement {
    if settings.bool("legacy_behaviour", false) {
        SourcePlacement::AfterEos
    } else {
        SourcePlacement::First
    }
}

fn pieces_and_scores(spm: &SentencePiece) -> Vec<(String, f64)> {
    spm.pieces
        .iter()
        .map(|p| (p.text.clone(), p.score as f64))
        .collect()
}

/// T5 and mT5: the model's pieces, then `extra_ids` sentinels from the highest
/// (`<extra_id_99>`) down; `text </s>`.
fn t5(files: &TokenizerFiles, settings: &Settings) -> Result<Built> {
    let model = spm(files, "spiece.model", "T5Tokenizer")?;
    let extra_ids = settings.usize("extra_ids", 100)?;
    let mut vocab = pieces_and_scores(&model);
    vocab.extend(
        (0..extra_ids)
            .rev()
            .map(|i| (format!("<extra_id_{i}>"), 0.0)),
    );
    let mut tokenizer = pipelines::sentencepiece(
        &model,
        "spiece.model",
        vocab,
        model.unk_id,
        Whitespace::SplitWords,
    )?;
    let mut specials = vec![
        settings.token("pad_token", "<pad>"),
        settings.token("eos_token", "</s>"),
        settings.token("unk_token", "<unk>"),
    ];
    specials.extend((0..extra_ids).map(|i| format!("<extra_id_{i}>")));
    add_specials(&mut tokenizer, &specials);
    let eos = id_of(&tokenizer, &specials[1])?;
    Ok(Built {
        backend: Backend::Pipeline(tokenizer),
        framing: Framing::Around {
            prefix: vec![],
            suffix: vec![eos],
        },
    })
}

/// Pegasus: pad, eos, `<mask_2>`, `<mask_1>` and `<unk_2>`..`<unk_{offset-1}>` first, then the
/// model's pieces from `<unk>` on, shifted by `offset`; `text </s>`.
fn pegasus(files: &TokenizerFiles, settings: &Settings) -> Result<Built> {
    let model = spm(files, "spiece.model", "PegasusTokenizer")?;
    let offset = settings.usize("offset", 103)?;
    let pad = settings.token("pad_token", "<pad>");
    let eos = settings.token("eos_token", "</s>");
    let mask = settings.token("mask_token", "<mask_2>");
    let mask_sent = settings.token("mask_token_sent", "<mask_1>");
    let unknowns: Vec<String> = (2..offset).map(|i| format!("<unk_{i}>")).collect();
    let mut vocab = vec![
        (pad.clone(), 0.0),
        (eos.clone(), 0.0),
        (mask.clone(), 0.0),
        (mask_sent.clone(), 0.0),
    ];
    vocab.extend(unknowns.iter().map(|u| (u.clone(), -100.0)));
    vocab.extend(pieces_and_scores(&model).into_iter().skip(2));
    let unk_id = (vocab.len() - model.pieces.len() + model.unk_id as usize) as u32;
    let mut tokenizer = pipelines::sentencepiece(
        &model,
        "spiece.model",
        vocab,
        unk_id,
        Whitespace::CollapseRuns,
    )?;
    let mut specials = vec![pad, eos.clone(), mask, mask_sent];
    specials.extend(unknowns);
    specials.push(settings.token("unk_token", "<unk>"));
    add_specials(&mut tokenizer, &specials);
    let eos = id_of(&tokenizer, &eos)?;
    Ok(Built {
        backend: Backend::Pipeline(tokenizer),
        framing: Framing::Around {
            prefix: vec![],
            suffix: vec![eos],
        },
    })
}

/// Where a fairseq family puts `<mask>` and its language codes after the vocabulary.
#[derive(Clone, Copy, PartialEq)]
enum FairseqLayout {
    /// codes, then `<mask>`.
    MBart50,
    MBart,
    /// `<mask>`, then codes.
    Nllb,
}

impl FairseqLayout {
    fn of_class(class: &str) -> Option<FairseqLayout> {
        match class {
            "MBart50Tokenizer" => Some(FairseqLayout::MBart50),
            "MBartTokenizer" => Some(FairseqLayout::MBart),
            "NllbTokenizer" => Some(FairseqLayout::Nllb),
            _ => None,
        }
    }

    fn codes(self) -> &'static [&'static str] {
        match self {
            FairseqLayout::MBart50 => &MBART50,
            FairseqLayout::MBart => &MBART,
            FairseqLayout::Nllb => &NLLB,
        }
    }

    /// The source language's code around an input and the target's rule, with the ids of
    /// `tokenizer`, which holds the codes.
    fn framing(self, tokenizer: &tokenizers::Tokenizer, settings: &Settings) -> Result<Framing> {
        let (default, placement, target) = match self {
            FairseqLayout::MBart50 => ("en_XX", SourcePlacement::First, TargetRule::ForcedBos),
            FairseqLayout::MBart => ("en_XX", SourcePlacement::AfterEos, TargetRule::DecoderStart),
            FairseqLayout::Nllb => ("eng_Latn", nllb_placement(settings), TargetRule::ForcedBos),
        };
        let codes = self
            .codes()
            .iter()
            .map(|&code| Ok((code.to_string(), id_of(tokenizer, code)?)))
            .collect::<Result<Vec<_>>>()?;
        let default = settings
            .string("src_lang")
            .unwrap_or_else(|| default.into());
        Ok(Framing::Languages {
            eos: id_of(tokenizer, &settings.token("eos_token", "</s>"))?,
            languages: Languages::new(codes, default, placement, target),
        })
    }
}

/// fairseq's dictionary over a SentencePiece model (mBART, mBART-50, NLLB): `<s>`, `<pad>`,
/// `</s>`, `<unk>`, then the pieces after SentencePiece's own three shifted by one, then the
/// language codes and `<mask>`.
fn fairseq(files: &TokenizerFiles, settings: &Settings, layout: FairseqLayout) -> Result<Built> {
    let codes = layout.codes();
    let name = "sentencepiece.bpe.model";
    let class = settings.class().unwrap_or("");
    let model = spm(files, name, class)?;
    let head = ["<s>", "<pad>", "</s>", "<unk>"];
    let mut vocab: Vec<(String, f64)> = head.iter().map(|s| (s.to_string(), 0.0)).collect();
    vocab.extend(pieces_and_scores(&model).into_iter().skip(3));
    let mask = ("<mask>".to_string(), 0.0);
    let code_entries = codes.iter().map(|c| (c.to_string(), 0.0));
    if layout == FairseqLayout::Nllb {
        vocab.push(mask);
        vocab.extend(code_entries);
    } else {
        vocab.extend(code_entries);
        vocab.push(mask);
    }
    let mut tokenizer = pipelines::sentencepiece(&model, name, vocab, 3, Whitespace::CollapseRuns)?;
    let mut specials: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    specials.extend(codes.iter().map(|c| c.to_string()));
    add_specials(&mut tokenizer, &specials);
    tokenizer.add_special_tokens(&[tokenizers::AddedToken::from("<mask>", true)
        .lstrip(true)
        .normalized(true)]);
    Ok(Built {
        framing: layout.framing(&tokenizer, settings)?,
        backend: Backend::Pipeline(tokenizer),
    })
}

/// BART and RoBERTa: byte-level BPE from vocab.json and merges.txt; `<s> text </s>`.
fn roberta(files: &TokenizerFiles) -> Result<Built> {
    let class = "BartTokenizer";
    let mut tokenizer = pipelines::byte_level_bpe(
        required(files, "vocab.json", class)?,
        required(files, "merges.txt", class)?,
    )?;
    let specials: Vec<String> = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    add_specials(&mut tokenizer, &specials);
    Ok(Built {
        framing: Framing::Around {
            prefix: vec![id_of(&tokenizer, "<s>")?],
            suffix: vec![id_of(&tokenizer, "</s>")?],
        },
        backend: Backend::Pipeline(tokenizer),
    })
}

/// The segmenter of a SentencePiece model run by the library itself, whose specials swallow
/// the spaces beside them.
fn library_pieces(
    model: &SentencePiece,
    name: &str,
    specials: &[String],
) -> Result<tokenizers::Tokenizer> {
    let mut pieces = pipelines::sentencepiece(
        model,
        name,
        pipelines::library_vocab(model),
        model.unk_id,
        Whitespace::Library,
    )?;
    let tokens: Vec<_> = specials
        .iter()
        .map(|s| special(s).lstrip(true).rstrip(true))
        .collect();
    pieces.add_special_tokens(&tokens);
    Ok(pieces)
}

/// M2M100: SentencePiece pieces through vocab.json, the `__xx__` language tokens numbered
/// after it; `__src__ text </s>`.
fn m2m100(files: &TokenizerFiles, settings: &Settings) -> Result<Built> {
    let class = "M2M100Tokenizer";
    let name = "sentencepiece.bpe.model";
    let model = spm(files, name, class)?;
    let vocab = json_ids("vocab.json", required(files, "vocab.json", class)?)?;
    let codes: &[&str] = match settings.string("language_codes").as_deref() {
        None | Some("m2m100") => &M2M100,
        Some("wmt21") => &WMT21,
        Some(other) => {
            return Err(Error::format(
                "tokenizer_config.json",
                format!("unknown \"language_codes\" \"{other}\" (m2m100 or wmt21)"),
            ));
        }
    };
    let base = vocab.len() as u32;
    let languages: Vec<(String, u32)> = codes
        .iter()
        .zip(base..)
        .map(|(code, id)| (code.to_string(), id))
        .collect();
    let extra: HashMap<String, u32> = languages
        .iter()
        .map(|(c, id)| (format!("__{c}__"), *id))
        .collect();
    let mut specials: Vec<String> = [
        "bos_token",
        "eos_token",
        "sep_token",
        "pad_token",
        "unk_token",
    ]
    .iter()
    .zip(["<s>", "</s>", "</s>", "<pad>", "<unk>"])
    .map(|(key, default)| settings.token(key, default))
    .collect();
    specials.extend(extra.keys().cloned());
    let pieces = library_pieces(&model, name, &specials)?;
    let eos = *vocab
        .get(&settings.token("eos_token", "</s>"))
        .ok_or_else(|| Error::format("vocab.json", "has no end-of-sequence token"))?;
    let default = settings.string("src_lang").unwrap_or_else(|| "en".into());
    Ok(Built {
        backend: Backend::Mapped(Mapped::new(pieces, vocab, extra, &specials, false)?),
        framing: Framing::Languages {
            eos,
            languages: Languages::new(
                languages,
                default,
                SourcePlacement::First,
                TargetRule::ForcedBos,
            ),
        },
    })
}

/// Marian: source.spm's pieces through vocab.json (a leading `>>xx<<` kept as one token);
/// `text </s>`.
fn marian(files: &TokenizerFiles, settings: &Settings) -> Result<Built> {
    let class = "MarianTokenizer";
    if settings.bool("separate_vocabs", false) {
        return Err(Error::Tokenizer(
            "Marian tokenizers with separate source and target vocabularies are not supported"
                .into(),
        ));
    }
    let model = spm(files, "source.spm", class)?;
    // The target model decodes in transformers only with separate vocabularies; its file is
    // part of every Marian repo all the same.
    required(files, "target.spm", class)?;
    let vocab = json_ids("vocab.json", required(files, "vocab.json", class)?)?;
    let specials: Vec<String> = [
        ("eos_token", "</s>"),
        ("unk_token", "<unk>"),
        ("pad_token", "<pad>"),
    ]
    .iter()
    .map(|(key, default)| settings.token(key, default))
    .collect();
    let pieces = library_pieces(&model, "source.spm", &specials)?;
    let eos = *vocab
        .get(&specials[0])
        .ok_or_else(|| Error::format("vocab.json", "has no end-of-sequence token"))?;
    Ok(Built {
        backend: Backend::Mapped(Mapped::new(pieces, vocab, HashMap::new(), &specials, true)?),
        framing: Framing::Around {
            prefix: vec![],
            suffix: vec![eos],
        },
    })
}
