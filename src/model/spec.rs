//! One normalised description of an encoder-decoder model, built from Hugging Face's
//! `config.json` or a Marian model's YAML (see `formats`). The graph reads only this:
//! families differ here, in data, not in code. Plain data with no dependencies, so every
//! layer (formats, ops, model) can use it.

use crate::error::{Error, Result};

/// The activation of the feed-forward blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Relu,
    /// Hugging Face "gelu": the exact erf form.
    Gelu,
    /// Hugging Face "gelu_new" / "gelu_pytorch_tanh": the tanh approximation.
    GeluTanh,
    /// "silu" / "swish".
    Silu,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormKind {
    /// (x - mean) / sqrt(var + eps) * weight + bias.
    LayerNorm,
    /// T5's: x / sqrt(mean(x²) + eps) * weight; no mean subtraction, no bias.
    RmsNorm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    T5,
    Bart,
    MBart,
    Marian,
    M2M100,
    Pegasus,
    /// A Marian binary model (`*.bin` with its YAML), as Firefox Translations ships them.
    MarianNative,
    /// Gemma's encoder-decoder: rotary positions, grouped-query and sliding-window attention,
    /// RMSNorm before and after every sublayer, soft-capped scores and logits.
    T5Gemma,
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
#[derive(Clone, Debug, PartialEq)]
pub struct StackSpec {
    /// The width of the stack's hidden states (d_model; T5Gemma's stacks may differ).
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    /// Heads of keys and values: fewer than `heads` with grouped-query attention, each
    /// serving heads / kv_heads consecutive query heads.
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn_dim: usize,
    /// Each layer's sliding window (a causal query sees its `window` latest keys, a
    /// bidirectional one the keys at most `window` positions away), or None where it attends
    /// to every key; empty where no layer slides.
    pub windows: Vec<Option<usize>>,
    /// Multiplies token embeddings (√width where the family scales them).
    pub embed_scale: f32,
}

impl StackSpec {
    /// Width of the attention projections (heads × head_dim; T5 allows it to differ from d_model).
    pub fn inner_dim(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Width of the keys (or values) of one position: kv_heads × head_dim.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Layer `layer`'s sliding window, if it slides.
    pub fn window(&self, layer: usize) -> Option<usize> {
        self.windows.get(layer).copied().flatten()
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
    /// Rotary embeddings of queries and keys (RoPE, rotate-half layout) with base `theta`.
    Rotary { theta: f32, limit: usize },
}

impl Positions {
    /// Row of the position table that position 0 reads.
    pub fn offset(&self) -> usize {
        match *self {
            Positions::RelativeBuckets { .. } | Positions::Rotary { .. } => 0,
            Positions::Learned { offset, .. } | Positions::Sinusoidal { offset, .. } => offset,
        }
    }

    /// The longest sequence the scheme can place, if it has a limit.
    pub fn limit(&self) -> Option<usize> {
        match *self {
            Positions::RelativeBuckets { .. } => None,
            Positions::Learned { limit, .. }
            | Positions::Sinusoidal { limit, .. }
            | Positions::Rotary { limit, .. } => Some(limit),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub family: Family,
    /// Size of the decoder's (output) vocabulary.
    pub vocab_size: usize,
    pub encoder: StackSpec,
    pub decoder: StackSpec,
    pub norm: NormKind,
    pub norm_eps: f32,
    /// Added to every stored norm weight: Gemma's RMSNorm scales by (1 + weight).
    pub norm_weight_offset: f32,
    /// Norm before each sublayer (T5, mBART, M2M100) or after its residual add (BART, Marian).
    pub pre_norm: bool,
    /// A norm after the last layer of each stack.
    pub final_norm: bool,
    /// Each sublayer's output is normalised before the residual add, besides its input
    /// (Gemma's norms around every sublayer).
    pub post_sublayer_norm: bool,
    /// A LayerNorm right after the embeddings (`layernorm_embedding`).
    pub embedding_norm: bool,
    pub positions: Positions,
    pub activation: Activation,
    /// T5 v1.1 gated feed-forward: act(x·W0ᵀ) * (x·W1ᵀ).
    pub gated_ffn: bool,
    /// Linear layers and norms carry biases.
    pub biases: bool,
    /// q·k is scaled by 1/√head_dim (T5 does not scale).
    pub scaled_attention: bool,
    /// q·k is scaled by this^-0.5 instead (`query_pre_attn_scalar`).
    pub query_scalar: Option<f32>,
    /// Attention scores become cap·tanh(score / cap) before masking.
    pub attention_softcap: Option<f32>,
    /// Logits become cap·tanh(logit / cap).
    pub logits_softcap: Option<f32>,
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
    /// The factor q·k is scaled by for heads of `head_dim`.
    pub fn attention_scale(&self, head_dim: usize) -> f32 {
        match (self.query_scalar, self.scaled_attention) {
            (Some(scalar), _) => (scalar as f64).powf(-0.5) as f32,
            (None, true) => (head_dim as f32).powf(-0.5),
            (None, false) => 1.0,
        }
    }

    /// Checks what every graph needs; errors name `file`, the description read.
    pub(crate) fn validate(&self, file: &str) -> Result<()> {
        let positive = [
            (
                "the encoder's width (d_model, hidden_size)",
                self.encoder.width,
            ),
            (
                "the decoder's width (d_model, hidden_size)",
                self.decoder.width,
            ),
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
                return Err(Error::format(file, format!("{field} must be positive")));
            }
        }
        for (name, stack) in [("encoder", &self.encoder), ("decoder", &self.decoder)] {
            if stack.kv_heads == 0 || !stack.heads.is_multiple_of(stack.kv_heads) {
                return Err(Error::format(
                    file,
                    format!(
                        "the {name}'s {} attention heads are not a multiple of its {} key/value heads",
                        stack.heads, stack.kv_heads
                    ),
                ));
            }
            if !stack.windows.is_empty() && stack.windows.len() != stack.layers {
                return Err(Error::format(
                    file,
                    format!(
                        "the {name} has {} layers and {} layer types",
                        stack.layers,
                        stack.windows.len()
                    ),
                ));
            }
            if stack.windows.contains(&Some(0)) {
                return Err(Error::format(file, "a sliding window must be positive"));
            }
        }
        if let Positions::Rotary { .. } = self.positions
            && [&self.encoder, &self.decoder]
                .iter()
                .any(|s| s.head_dim % 2 != 0)
        {
            return Err(Error::format(
                file,
                "rotary positions need an even head dimension",
            ));
        }
        if !self.start_from_zero_embedding
            && self.decoder_start_token_id as usize >= self.vocab_size
        {
            return Err(Error::format(
                file,
                format!(
                    "\"decoder_start_token_id\" {} is outside the vocabulary of {}",
                    self.decoder_start_token_id, self.vocab_size
                ),
            ));
        }
        Ok(())
    }
}
