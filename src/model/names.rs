//! Where each family's checkpoint keeps each weight: one table per naming scheme, with `{i}`
//! for the layer index (`{l}` for Marian's count from 1). Adding a family adds a table (or reuses one), not graph code.

use std::ops::Range;

use super::spec::Family;
use crate::error::Result;
use crate::formats::TensorSource;

/// Names of one attention block's projections under a common prefix.
pub struct AttentionNames {
    pub prefix: &'static str,
    pub q: &'static str,
    pub k: &'static str,
    pub v: &'static str,
    pub o: &'static str,
}

pub struct FeedForwardNames {
    /// The input projection (non-gated models).
    pub input: &'static str,
    /// The gate and linear input projections (gated models).
    pub gated: Option<(&'static str, &'static str)>,
    pub output: &'static str,
}

pub struct StackNames {
    pub self_attention: AttentionNames,
    pub self_attention_norm: &'static str,
    /// The norm of the self-attention's output, before the residual add (Gemma).
    pub post_self_attention_norm: Option<&'static str>,
    pub feed_forward: FeedForwardNames,
    pub feed_forward_norm: &'static str,
    pub post_feed_forward_norm: Option<&'static str>,
    pub final_norm: &'static str,
    /// The norm right after the embeddings.
    pub embedding_norm: Option<&'static str>,
    /// A stored absolute position table.
    pub positions: Option<&'static str>,
    /// T5's relative position bias table (in the first layer, shared by all).
    pub relative_bias: Option<&'static str>,
}

/// Marian's SSRU decoder cell: `{prefix}.` and `{prefix}.f` are the candidate and forget
/// projections (only the forget gate has a bias).
pub struct SsruNames {
    pub prefix: &'static str,
}

pub struct FamilyNames {
    /// Candidates for the shared token embedding, in order of preference: hub checkpoints
    /// store tied weights under one or several of these names.
    pub embedding: &'static [&'static str],
    /// The decoder's own embedding, where it does not share the encoder's.
    pub decoder_embedding: &'static str,
    pub lm_head: &'static str,
    pub logits_bias: &'static str,
    pub encoder: StackNames,
    pub decoder: StackNames,
    pub cross_attention: AttentionNames,
    pub cross_attention_norm: &'static str,
    pub post_cross_attention_norm: Option<&'static str>,
    pub ssru: Option<SsruNames>,
}

/// T5 and Marian name the projections q, k, v and o.
const fn qkvo_attention(prefix: &'static str) -> AttentionNames {
    AttentionNames {
        prefix,
        q: "q",
        k: "k",
        v: "v",
        o: "o",
    }
}

const fn bart_attention(prefix: &'static str) -> AttentionNames {
    AttentionNames {
        prefix,
        q: "q_proj",
        k: "k_proj",
        v: "v_proj",
        o: "out_proj",
    }
}

static T5: FamilyNames = FamilyNames {
    embedding: &[
        "shared.weight",
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
    ],
    decoder_embedding: "decoder.embed_tokens.weight",
    lm_head: "lm_head.weight",
    logits_bias: "final_logits_bias",
    encoder: StackNames {
        self_attention: qkvo_attention("encoder.block.{i}.layer.0.SelfAttention"),
        self_attention_norm: "encoder.block.{i}.layer.0.layer_norm",
        feed_forward: FeedForwardNames {
            input: "encoder.block.{i}.layer.1.DenseReluDense.wi",
            gated: Some((
                "encoder.block.{i}.layer.1.DenseReluDense.wi_0",
                "encoder.block.{i}.layer.1.DenseReluDense.wi_1",
            )),
            output: "encoder.block.{i}.layer.1.DenseReluDense.wo",
        },
        post_self_attention_norm: None,
        feed_forward_norm: "encoder.block.{i}.layer.1.layer_norm",
        post_feed_forward_norm: None,
        final_norm: "encoder.final_layer_norm",
        embedding_norm: None,
        positions: None,
        relative_bias: Some("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
    },
    decoder: StackNames {
        self_attention: qkvo_attention("decoder.block.{i}.layer.0.SelfAttention"),
        self_attention_norm: "decoder.block.{i}.layer.0.layer_norm",
        feed_forward: FeedForwardNames {
            input: "decoder.block.{i}.layer.2.DenseReluDense.wi",
            gated: Some((
                "decoder.block.{i}.layer.2.DenseReluDense.wi_0",
                "decoder.block.{i}.layer.2.DenseReluDense.wi_1",
            )),
            output: "decoder.block.{i}.layer.2.DenseReluDense.wo",
        },
        post_self_attention_norm: None,
        feed_forward_norm: "decoder.block.{i}.layer.2.layer_norm",
        post_feed_forward_norm: None,
        final_norm: "decoder.final_layer_norm",
        embedding_norm: None,
        positions: None,
        relative_bias: Some("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
    },
    cross_attention: qkvo_attention("decoder.block.{i}.layer.1.EncDecAttention"),
    cross_attention_norm: "decoder.block.{i}.layer.1.layer_norm",
    post_cross_attention_norm: None,
    ssru: None,
};

/// BART, mBART, Marian, M2M100 (NLLB) and Pegasus all name their weights this way.
static BART: FamilyNames = FamilyNames {
    embedding: &[
        "model.shared.weight",
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
    ],
    decoder_embedding: "model.decoder.embed_tokens.weight",
    lm_head: "lm_head.weight",
    logits_bias: "final_logits_bias",
    encoder: StackNames {
        self_attention: bart_attention("model.encoder.layers.{i}.self_attn"),
        self_attention_norm: "model.encoder.layers.{i}.self_attn_layer_norm",
        feed_forward: FeedForwardNames {
            input: "model.encoder.layers.{i}.fc1",
            gated: None,
            output: "model.encoder.layers.{i}.fc2",
        },
        post_self_attention_norm: None,
        feed_forward_norm: "model.encoder.layers.{i}.final_layer_norm",
        post_feed_forward_norm: None,
        final_norm: "model.encoder.layer_norm",
        embedding_norm: Some("model.encoder.layernorm_embedding"),
        positions: Some("model.encoder.embed_positions.weight"),
        relative_bias: None,
    },
    decoder: StackNames {
        self_attention: bart_attention("model.decoder.layers.{i}.self_attn"),
        self_attention_norm: "model.decoder.layers.{i}.self_attn_layer_norm",
        feed_forward: FeedForwardNames {
            input: "model.decoder.layers.{i}.fc1",
            gated: None,
            output: "model.decoder.layers.{i}.fc2",
        },
        post_self_attention_norm: None,
        feed_forward_norm: "model.decoder.layers.{i}.final_layer_norm",
        post_feed_forward_norm: None,
        final_norm: "model.decoder.layer_norm",
        embedding_norm: Some("model.decoder.layernorm_embedding"),
        positions: Some("model.decoder.embed_positions.weight"),
        relative_bias: None,
    },
    cross_attention: bart_attention("model.decoder.layers.{i}.encoder_attn"),
    cross_attention_norm: "model.decoder.layers.{i}.encoder_attn_layer_norm",
    post_cross_attention_norm: None,
    ssru: None,
};

/// Marian binary models, as `formats::marian::tensors` presents them: `stem.p.weight` and `stem.p.bias`
/// stand for Marian's `stem_Wp` and `stem_bp`, `norm.weight` and `norm.bias` for
/// `norm_scale` and `norm_bias`. One embedding (`Wemb`) serves both stacks and the output.
static MARIAN_NATIVE: FamilyNames = FamilyNames {
    embedding: &["Wemb"],
    decoder_embedding: "Wemb",
    lm_head: "Wemb",
    logits_bias: "decoder_ff_logit_out_b",
    encoder: StackNames {
        self_attention: qkvo_attention("encoder_l{l}_self"),
        self_attention_norm: "encoder_l{l}_self_Wo_ln",
        feed_forward: FeedForwardNames {
            input: "encoder_l{l}_ffn.1",
            gated: None,
            output: "encoder_l{l}_ffn.2",
        },
        post_self_attention_norm: None,
        feed_forward_norm: "encoder_l{l}_ffn_ffn_ln",
        post_feed_forward_norm: None,
        final_norm: "",
        embedding_norm: None,
        positions: None,
        relative_bias: None,
    },
    decoder: StackNames {
        self_attention: qkvo_attention("decoder_l{l}_self"),
        // The norm after the SSRU cell.
        self_attention_norm: "decoder_l{l}_rnn_ffn_ln",
        feed_forward: FeedForwardNames {
            input: "decoder_l{l}_ffn.1",
            gated: None,
            output: "decoder_l{l}_ffn.2",
        },
        post_self_attention_norm: None,
        feed_forward_norm: "decoder_l{l}_ffn_ffn_ln",
        post_feed_forward_norm: None,
        final_norm: "",
        embedding_norm: None,
        positions: None,
        relative_bias: None,
    },
    cross_attention: qkvo_attention("decoder_l{l}_context"),
    cross_attention_norm: "decoder_l{l}_context_Wo_ln",
    post_cross_attention_norm: None,
    ssru: Some(SsruNames {
        prefix: "decoder_l{l}_rnn",
    }),
};

/// One T5Gemma stack's names, under `model.encoder` or `model.decoder`.
macro_rules! t5gemma_stack {
    ($stack:literal) => {
        StackNames {
            self_attention: AttentionNames {
                prefix: concat!("model.", $stack, ".layers.{i}.self_attn"),
                q: "q_proj",
                k: "k_proj",
                v: "v_proj",
                o: "o_proj",
            },
            self_attention_norm: concat!("model.", $stack, ".layers.{i}.pre_self_attn_layernorm"),
            post_self_attention_norm: Some(concat!(
                "model.",
                $stack,
                ".layers.{i}.post_self_attn_layernorm"
            )),
            feed_forward: FeedForwardNames {
                input: concat!("model.", $stack, ".layers.{i}.mlp.up_proj"),
                gated: Some((
                    concat!("model.", $stack, ".layers.{i}.mlp.gate_proj"),
                    concat!("model.", $stack, ".layers.{i}.mlp.up_proj"),
                )),
                output: concat!("model.", $stack, ".layers.{i}.mlp.down_proj"),
            },
            feed_forward_norm: concat!("model.", $stack, ".layers.{i}.pre_feedforward_layernorm"),
            post_feed_forward_norm: Some(concat!(
                "model.",
                $stack,
                ".layers.{i}.post_feedforward_layernorm"
            )),
            final_norm: concat!("model.", $stack, ".norm"),
            embedding_norm: None,
            positions: None,
            relative_bias: None,
        }
    };
}

/// T5Gemma: Gemma's names, a norm before and after every sublayer, separate embeddings
/// per stack and an LM head under `lm_head.out_proj` (usually tied to the decoder's).
static T5GEMMA: FamilyNames = FamilyNames {
    embedding: &["model.encoder.embed_tokens.weight"],
    decoder_embedding: "model.decoder.embed_tokens.weight",
    lm_head: "lm_head.out_proj.weight",
    logits_bias: "",
    encoder: t5gemma_stack!("encoder"),
    decoder: t5gemma_stack!("decoder"),
    cross_attention: AttentionNames {
        prefix: "model.decoder.layers.{i}.cross_attn",
        q: "q_proj",
        k: "k_proj",
        v: "v_proj",
        o: "o_proj",
    },
    cross_attention_norm: "model.decoder.layers.{i}.pre_cross_attn_layernorm",
    post_cross_attention_norm: Some("model.decoder.layers.{i}.post_cross_attn_layernorm"),
    ssru: None,
};

pub fn for_family(family: Family) -> &'static FamilyNames {
    match family {
        Family::T5 => &T5,
        Family::Bart | Family::MBart | Family::Marian | Family::M2M100 | Family::Pegasus => &BART,
        Family::MarianNative => &MARIAN_NATIVE,
        Family::T5Gemma => &T5GEMMA,
    }
}

/// Substitutes the layer index into a name pattern.
pub fn layer(pattern: &str, i: usize) -> String {
    pattern
        .replace("{i}", &i.to_string())
        .replace("{l}", &(i + 1).to_string())
}

/// The tables name BART-family tensors as the generation class saves them (`model.encoder...`);
/// a checkpoint of the base model class (`BartModel`, as facebook/bart-base ships) has the
/// same names without `model.`. This view finds a tensor under either.
pub struct WithOrWithoutPrefix<'a, T>(pub &'a T);

impl<T: TensorSource> WithOrWithoutPrefix<'_, T> {
    fn resolve<'n>(&self, name: &'n str) -> &'n str {
        match name.strip_prefix("model.") {
            Some(bare) if !self.0.contains(name) && self.0.contains(bare) => bare,
            _ => name,
        }
    }
}

impl<T: TensorSource> TensorSource for WithOrWithoutPrefix<'_, T> {
    fn files(&self) -> String {
        self.0.files()
    }

    fn contains(&self, name: &str) -> bool {
        self.0.contains(self.resolve(name))
    }

    fn shape(&self, name: &str) -> Result<Vec<usize>> {
        self.0.shape(self.resolve(name))
    }

    async fn rows(&self, name: &str, expected: &[usize], rows: Range<usize>) -> Result<Vec<f32>> {
        self.0.rows(self.resolve(name), expected, rows).await
    }

    fn quantized(&self, name: &str, expected: &[usize]) -> Result<Option<(Vec<i8>, f32)>> {
        self.0.quantized(self.resolve(name), expected)
    }
}
