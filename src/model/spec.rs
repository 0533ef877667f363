//! One normalised description of an encoder-decoder model, built from Hugging Face's
//! `config.json`. The graph reads only this: families differ here, in data, not in code.

use serde_json::Value;

use super::config_json::ConfigJson;
use crate::error::{Error, Result};
use crate::ops::{Activation, NormKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    T5,
    Bart,
    MBart,
    Marian,
    M2M100,
    /// A Marian binary model (`*.bin` with its YAML), as Firefox Translations ships them.
    MarianNative,
}

impl Family {
    const SUPPORTED: &str = "t5, mt5, bart, mbart, marian, m2m_100 (also NLLB)";

    pub fn from_model_type(model_type: &str) -> Result<Family> {
        Ok(match model_type {
            "t5" | "mt5" => Family::T5,
            "bart" => Family::Bart,
            "mbart" => Family::MBart,
            "marian" => Family::Marian,
            "m2m_100" => Family::M2M100,
            other => {
                return Err(config_error(format!(
                    "unsupported model_type \"{other}\" (supported: {})",
                    Self::SUPPORTED
                )));
            }
        })
    }
}

/// What mixes information across the decoder's own positions in each layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderCell {
    /// Causal self-attention over a key/value cache.
    SelfAttention,
    /// Marian's SSRU: an element-wise recurrence with one state vector per sequence.
    Ssru,
}

/// Sizes of one stack (encoder or decoder).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StackSpec {
    pub layers: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub ffn_dim: usize,
}

impl StackSpec {
    /// Width of the attention projections (heads × head_dim; T5 allows it to differ from d_model).
    pub fn inner_dim(&self) -> usize {
        self.heads * self.head_dim
    }
}

/// How the sinusoids of a computed position table are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sinusoids {
    /// Marian: sin of the even frequencies in the first half, cos of the odd in the second,
    /// computed in f64 (numpy) as transformers does.
    Marian,
    /// fairseq / M2M100: sin in the first half, cos in the second, computed in f32 (torch).
    Fairseq,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Positions {
    /// T5: a learned bias per head for buckets of relative distance, shared by all layers.
    RelativeBuckets {
        num_buckets: usize,
        max_distance: usize,
    },
    /// A learned table of `limit + offset` rows (BART, mBART: offset 2).
    Learned { offset: usize, limit: usize },
    /// A computed table, unless the checkpoint stores one.
    Sinusoidal {
        offset: usize,
        limit: usize,
        layout: Sinusoids,
    },
}

impl Positions {
    /// Row of the position table that position 0 reads.
    pub fn offset(&self) -> usize {
        match *self {
            Positions::RelativeBuckets { .. } => 0,
            Positions::Learned { offset, .. } | Positions::Sinusoidal { offset, .. } => offset,
        }
    }

    /// The longest sequence the scheme can place, if it has a limit.
    pub fn limit(&self) -> Option<usize> {
        match *self {
            Positions::RelativeBuckets { .. } => None,
            Positions::Learned { limit, .. } | Positions::Sinusoidal { limit, .. } => Some(limit),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub family: Family,
    pub d_model: usize,
    /// Size of the decoder's (output) vocabulary.
    pub vocab_size: usize,
    pub encoder: StackSpec,
    pub decoder: StackSpec,
    pub norm: NormKind,
    pub norm_eps: f32,
    /// Norm before each sublayer (T5, mBART, M2M100) or after its residual add (BART, Marian).
    pub pre_norm: bool,
    /// A norm after the last layer of each stack.
    pub final_norm: bool,
    /// A LayerNorm right after the embeddings (`layernorm_embedding`).
    pub embedding_norm: bool,
    pub positions: Positions,
    /// Multiplies token embeddings (√d_model where `scale_embedding` is set).
    pub embed_scale: f32,
    pub activation: Activation,
    /// T5 v1.1 gated feed-forward: act(x·W0ᵀ) * (x·W1ᵀ).
    pub gated_ffn: bool,
    /// Linear layers and norms carry biases.
    pub biases: bool,
    /// q·k is scaled by 1/√head_dim (T5 does not scale).
    pub scaled_attention: bool,
    pub tied_lm_head: bool,
    /// Multiplies the decoder output before the LM head (T5 tied: d_model^-0.5).
    pub lm_head_scale: f32,
    /// `final_logits_bias` is added to the logits.
    pub logits_bias: bool,
    /// The decoder has its own token embedding (Marian without shared embeddings).
    pub separate_decoder_embedding: bool,
    pub decoder_cell: DecoderCell,
    /// The decoder starts from a zero embedding (plus position 0) rather than a token's:
    /// the embedding table gets a zero row at `decoder_start_token_id` = `vocab_size`.
    pub start_from_zero_embedding: bool,
    pub decoder_start_token_id: u32,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: u32,
}

impl ModelSpec {
    pub fn from_config_json(text: &str) -> Result<ModelSpec> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| config_error(format!("not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(config_error("expected a JSON object"));
        };
        let cfg = ConfigJson {
            map: &map,
            file: "config.json",
        };
        let model_type = cfg.str_or("model_type", "")?;
        if model_type.is_empty() {
            return Err(config_error("missing field \"model_type\""));
        }
        let spec = match Family::from_model_type(model_type)? {
            Family::T5 => t5_spec(&cfg)?,
            family => bart_like_spec(&cfg, family)?,
        };
        spec.validate()?;
        Ok(spec)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let positive = [
            ("d_model", self.d_model),
            ("vocab_size", self.vocab_size),
            ("encoder attention heads", self.encoder.heads),
            ("decoder attention heads", self.decoder.heads),
            ("encoder head dimension", self.encoder.head_dim),
            ("decoder head dimension", self.decoder.head_dim),
            ("encoder feed-forward dimension", self.encoder.ffn_dim),
            ("decoder feed-forward dimension", self.decoder.ffn_dim),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(config_error(format!("{field} must be positive")));
            }
        }
        if !self.start_from_zero_embedding
            && self.decoder_start_token_id as usize >= self.vocab_size
        {
            return Err(config_error(format!(
                "\"decoder_start_token_id\" {} is outside the vocabulary of {}",
                self.decoder_start_token_id, self.vocab_size
            )));
        }
        Ok(())
    }
}

fn config_error(message: impl Into<String>) -> Error {
    Error::format("config.json", message.into())
}

/// Defaults shared by every family; each parser overrides what its config says.
fn eos_ids(cfg: &ConfigJson, default: u32) -> Result<Vec<u32>> {
    let ids = cfg.token_ids("eos_token_id")?;
    Ok(if ids.is_empty() { vec![default] } else { ids })
}

fn t5_spec(cfg: &ConfigJson) -> Result<ModelSpec> {
    let d_model = cfg.usize("d_model")?;
    let heads = cfg.usize("num_heads")?;
    let head_dim = cfg.usize("d_kv")?;
    let ffn_dim = cfg.usize("d_ff")?;
    let encoder_layers = cfg.usize("num_layers")?;
    let stack = |layers| StackSpec {
        layers,
        heads,
        head_dim,
        ffn_dim,
    };
    // "gated-gelu" (T5 v1.1, Flan-T5) or "relu" (original T5). transformers derives the
    // activation from this field alone, and maps the legacy "gated-gelu" to the tanh form.
    let proj = cfg.str_or("feed_forward_proj", "relu")?;
    let (gated_ffn, act_name) = match proj.strip_prefix("gated-") {
        Some("gelu") => (true, "gelu_new"),
        Some(act) => (true, act),
        None => (false, proj),
    };
    let activation = Activation::from_hf_name(act_name)
        .map_err(|_| config_error(format!("unsupported \"feed_forward_proj\" \"{proj}\"")))?;
    let tied = cfg.bool_or("tie_word_embeddings", true)?;
    // transformers 5 names the d_model^-0.5 rescaling of tied T5 models; older configs imply it.
    let scaled = cfg.bool_or("scale_decoder_outputs", tied)?;
    let pad = cfg.usize_or("pad_token_id", 0)? as u32;
    Ok(ModelSpec {
        family: Family::T5,
        d_model,
        vocab_size: cfg.usize("vocab_size")?,
        encoder: stack(encoder_layers),
        decoder: stack(cfg.usize_or("num_decoder_layers", encoder_layers)?),
        norm: NormKind::RmsNorm,
        norm_eps: cfg.f32_or("layer_norm_epsilon", 1e-6)?,
        pre_norm: true,
        final_norm: true,
        embedding_norm: false,
        positions: Positions::RelativeBuckets {
            num_buckets: cfg.usize_or("relative_attention_num_buckets", 32)?,
            max_distance: cfg.usize_or("relative_attention_max_distance", 128)?,
        },
        embed_scale: 1.0,
        activation,
        gated_ffn,
        biases: false,
        scaled_attention: false,
        tied_lm_head: tied,
        lm_head_scale: if scaled {
            (d_model as f32).powf(-0.5)
        } else {
            1.0
        },
        logits_bias: false,
        separate_decoder_embedding: false,
        decoder_cell: DecoderCell::SelfAttention,
        start_from_zero_embedding: false,
        decoder_start_token_id: cfg.usize_or("decoder_start_token_id", pad as usize)? as u32,
        eos_token_ids: eos_ids(cfg, 1)?,
        pad_token_id: pad,
    })
}

/// BART, mBART, Marian and M2M100 share one config layout and one graph; they differ in
/// norm placement, embedding norm, final norms, positions and the logits bias.
fn bart_like_spec(cfg: &ConfigJson, family: Family) -> Result<ModelSpec> {
    let d_model = cfg.usize("d_model")?;
    let stack = |prefix: &str| -> Result<StackSpec> {
        let heads_key = format!("{prefix}_attention_heads");
        let heads = cfg.usize(&heads_key)?;
        if heads == 0 || !d_model.is_multiple_of(heads) {
            return Err(config_error(format!(
                "\"d_model\" {d_model} is not divisible by \"{heads_key}\" {heads}"
            )));
        }
        Ok(StackSpec {
            layers: cfg.usize(&format!("{prefix}_layers"))?,
            heads,
            head_dim: d_model / heads,
            ffn_dim: cfg.usize(&format!("{prefix}_ffn_dim"))?,
        })
    };
    let encoder = stack("encoder")?;
    let decoder = stack("decoder")?;
    let limit = cfg.usize("max_position_embeddings")?;
    let (pre_norm, embedding_norm, final_norm, logits_bias, positions) = match family {
        Family::Bart => (
            false,
            true,
            false,
            true,
            Positions::Learned { offset: 2, limit },
        ),
        Family::MBart => (
            true,
            true,
            true,
            true,
            Positions::Learned { offset: 2, limit },
        ),
        Family::Marian => {
            let layout = Sinusoids::Marian;
            (
                false,
                false,
                false,
                true,
                Positions::Sinusoidal {
                    offset: 0,
                    limit,
                    layout,
                },
            )
        }
        _ => {
            let layout = Sinusoids::Fairseq;
            (
                true,
                false,
                true,
                false,
                Positions::Sinusoidal {
                    offset: 2,
                    limit,
                    layout,
                },
            )
        }
    };
    let vocab_size = cfg.usize("vocab_size")?;
    let separate_decoder_embedding =
        family == Family::Marian && !cfg.bool_or("share_encoder_decoder_embeddings", true)?;
    let decoder_vocab = if separate_decoder_embedding {
        cfg.usize_or("decoder_vocab_size", vocab_size)?
    } else {
        vocab_size
    };
    let pad = cfg.usize_or("pad_token_id", 1)? as u32;
    Ok(ModelSpec {
        family,
        d_model,
        vocab_size: decoder_vocab,
        encoder,
        decoder,
        norm: NormKind::LayerNorm,
        norm_eps: 1e-5,
        pre_norm,
        final_norm,
        embedding_norm,
        positions,
        embed_scale: if cfg.bool_or("scale_embedding", false)? {
            (d_model as f32).sqrt()
        } else {
            1.0
        },
        activation: Activation::from_hf_name(cfg.str_or("activation_function", "gelu")?)?,
        gated_ffn: false,
        biases: true,
        scaled_attention: true,
        tied_lm_head: cfg.bool_or("tie_word_embeddings", true)?,
        lm_head_scale: 1.0,
        logits_bias,
        separate_decoder_embedding,
        decoder_cell: DecoderCell::SelfAttention,
        start_from_zero_embedding: false,
        decoder_start_token_id: cfg.usize_or("decoder_start_token_id", 2)? as u32,
        eos_token_ids: eos_ids(cfg, 2)?,
        pad_token_id: pad,
    })
}
