//! Where each family's checkpoint keeps each weight: one table per family, with `{i}` for
//! the layer index. Adding a family adds a table, not graph code.

use super::spec::Family;

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
    pub gate: &'static str,
    pub linear: &'static str,
    pub output: &'static str,
}

pub struct StackNames {
    pub self_attention: AttentionNames,
    pub self_attention_norm: &'static str,
    pub feed_forward: FeedForwardNames,
    pub feed_forward_norm: &'static str,
    pub final_norm: Option<&'static str>,
    pub relative_bias: Option<&'static str>,
}

pub struct FamilyNames {
    /// Candidates for the shared token embedding, in order of preference: hub checkpoints
    /// store tied weights under one or several of these names.
    pub embedding: &'static [&'static str],
    pub lm_head: &'static str,
    pub encoder: StackNames,
    pub decoder: StackNames,
    pub cross_attention: AttentionNames,
    pub cross_attention_norm: &'static str,
}

const fn t5_attention(prefix: &'static str) -> AttentionNames {
    AttentionNames {
        prefix,
        q: "q",
        k: "k",
        v: "v",
        o: "o",
    }
}

static T5: FamilyNames = FamilyNames {
    embedding: &[
        "shared.weight",
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
    ],
    lm_head: "lm_head.weight",
    encoder: StackNames {
        self_attention: t5_attention("encoder.block.{i}.layer.0.SelfAttention"),
        self_attention_norm: "encoder.block.{i}.layer.0.layer_norm",
        feed_forward: FeedForwardNames {
            input: "encoder.block.{i}.layer.1.DenseReluDense.wi",
            gate: "encoder.block.{i}.layer.1.DenseReluDense.wi_0",
            linear: "encoder.block.{i}.layer.1.DenseReluDense.wi_1",
            output: "encoder.block.{i}.layer.1.DenseReluDense.wo",
        },
        feed_forward_norm: "encoder.block.{i}.layer.1.layer_norm",
        final_norm: Some("encoder.final_layer_norm"),
        relative_bias: Some("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
    },
    decoder: StackNames {
        self_attention: t5_attention("decoder.block.{i}.layer.0.SelfAttention"),
        self_attention_norm: "decoder.block.{i}.layer.0.layer_norm",
        feed_forward: FeedForwardNames {
            input: "decoder.block.{i}.layer.2.DenseReluDense.wi",
            gate: "decoder.block.{i}.layer.2.DenseReluDense.wi_0",
            linear: "decoder.block.{i}.layer.2.DenseReluDense.wi_1",
            output: "decoder.block.{i}.layer.2.DenseReluDense.wo",
        },
        feed_forward_norm: "decoder.block.{i}.layer.2.layer_norm",
        final_norm: Some("decoder.final_layer_norm"),
        relative_bias: Some("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
    },
    cross_attention: t5_attention("decoder.block.{i}.layer.1.EncDecAttention"),
    cross_attention_norm: "decoder.block.{i}.layer.1.layer_norm",
};

pub fn for_family(family: Family) -> &'static FamilyNames {
    match family {
        Family::T5 => &T5,
    }
}

/// Substitutes the layer index into a name pattern.
pub fn layer(pattern: &str, i: usize) -> String {
    pattern.replace("{i}", &i.to_string())
}
