//! The model description of a Marian binary model, read from the YAML it embeds
//! (`special:model.yml`): Marian's own training options, not Hugging Face's config.json.
//! Only the options that change the graph are read; every value the graph cannot honour is
//! refused with its name, so an unsupported model fails at load instead of translating badly.

use serde_yaml::{Mapping, Value};

use crate::error::{Error, Result};
use crate::model::spec::{
    Activation, DecoderCell, Family, ModelSpec, NormKind, Positions, Sinusoids, StackSpec,
};

/// The longest input (and output) a Marian model is given positions for. Marian computes
/// sinusoids for any length; this bounds the table we upload.
pub const MAX_POSITIONS: usize = 1024;

/// Marian's end-of-sentence id (`</s>` is the first entry of its vocabularies).
const EOS: u32 = 0;

struct Options<'a> {
    map: &'a Mapping,
    file: &'a str,
}

impl Options<'_> {
    fn error(&self, message: String) -> Error {
        Error::format(self.file, message)
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(Value::String(key.to_string()))
    }

    fn usize(&self, key: &str) -> Result<usize> {
        match self.get(key) {
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|&v| v > 0)
                .map(|v| v as usize)
                .ok_or_else(|| self.error(format!("\"{key}\" must be a positive integer"))),
            Some(_) => Err(self.error(format!("\"{key}\" must be a positive integer"))),
            None => Err(self.error(format!("missing option \"{key}\""))),
        }
    }

    /// A string option; `default` when absent (Marian's own default).
    fn str_or<'v>(&'v self, key: &str, default: &'v str) -> Result<&'v str> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.error(format!("\"{key}\" must be a string"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.error(format!("\"{key}\" must be true or false"))),
        }
    }

    /// Refuses a value the graph does not implement.
    fn require(&self, key: &str, found: &str, supported: &[&str]) -> Result<()> {
        if supported.contains(&found) {
            Ok(())
        } else {
            Err(self.error(format!(
                "\"{key}: {found}\" is not supported (supported: {})",
                supported
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

/// The model description from the embedded YAML. `vocab_size` is the output vocabulary,
/// which the caller reads from the embedding matrix and checks against `dim-vocabs`.
pub fn spec_from_marian_yaml(yaml: &str, file: &str, vocab_size: usize) -> Result<ModelSpec> {
    let value: Value = serde_yaml::from_str(yaml)
        .map_err(|e| Error::format(file, format!("the model's YAML is not valid: {e}")))?;
    let Value::Mapping(map) = value else {
        return Err(Error::format(file, "the model's YAML is not a mapping"));
    };
    let o = Options { map: &map, file };
    o.require("type", o.str_or("type", "amun")?, &["transformer"])?;
    o.require(
        "transformer-decoder-autoreg",
        o.str_or("transformer-decoder-autoreg", "self-attention")?,
        &["rnn"],
    )?;
    o.require("dec-cell", o.str_or("dec-cell", "gru")?, &["ssru"])?;
    o.require(
        "transformer-postprocess",
        o.str_or("transformer-postprocess", "dan")?,
        &["dan"],
    )?;
    o.require(
        "transformer-preprocess",
        o.str_or("transformer-preprocess", "")?,
        &[""],
    )?;
    o.require(
        "transformer-postprocess-emb",
        o.str_or("transformer-postprocess-emb", "d")?,
        &["d", ""],
    )?;
    o.require(
        "transformer-ffn-depth",
        &match o.get("transformer-ffn-depth") {
            None => 2,
            Some(_) => o.usize("transformer-ffn-depth")?,
        }
        .to_string(),
        &["2"],
    )?;
    if o.bool_or("transformer-train-position-embeddings", false)? {
        return Err(o.error(
            "\"transformer-train-position-embeddings: true\" is not supported".to_string(),
        ));
    }
    if !o.bool_or("tied-embeddings-all", false)? {
        return Err(o.error(
            "only models with \"tied-embeddings-all: true\" (one Wemb) are supported".to_string(),
        ));
    }
    if let Some(Value::Sequence(vocabs)) = o.get("dim-vocabs")
        && vocabs.iter().any(|v| v.as_u64() != Some(vocab_size as u64))
    {
        return Err(o.error(format!(
            "\"dim-vocabs\" {vocabs:?} does not match the {vocab_size} rows of Wemb"
        )));
    }
    let activation = match o.str_or("transformer-ffn-activation", "swish")? {
        "relu" => Activation::Relu,
        "swish" => Activation::Silu,
        "gelu" => Activation::Gelu,
        other => {
            return Err(o.error(format!(
                "\"transformer-ffn-activation: {other}\" is not supported (relu, swish, gelu)"
            )));
        }
    };
    let d_model = o.usize("dim-emb")?;
    let heads = o.usize("transformer-heads")?;
    if !d_model.is_multiple_of(heads) {
        return Err(o.error(format!(
            "\"dim-emb\" {d_model} is not divisible by \"transformer-heads\" {heads}"
        )));
    }
    let ffn_dim = o.usize("transformer-dim-ffn")?;
    let stack = |layers| StackSpec {
        width: d_model,
        layers,
        heads,
        kv_heads: heads,
        head_dim: d_model / heads,
        ffn_dim,
        windows: Vec::new(),
        embed_scale: (d_model as f32).sqrt(),
    };
    let spec = ModelSpec {
        family: Family::MarianNative,
        vocab_size,
        encoder: stack(o.usize("enc-depth")?),
        decoder: stack(o.usize("dec-depth")?),
        norm: NormKind::LayerNorm,
        // Marian's kernels use 1e-9; the Firefox engines this model is checked against use
        // 1e-6, and the difference is far below any logit gap.
        norm_eps: 1e-6,
        norm_weight_offset: 0.0,
        pre_norm: false,
        final_norm: false,
        post_sublayer_norm: false,
        embedding_norm: false,
        positions: Positions::Sinusoidal {
            offset: 0,
            limit: MAX_POSITIONS,
            layout: Sinusoids::Fairseq,
        },
        activation,
        gated_ffn: false,
        biases: true,
        scaled_attention: true,
        query_scalar: None,
        attention_softcap: None,
        logits_softcap: None,
        tied_lm_head: false,
        lm_head_scale: 1.0,
        logits_bias: !o.bool_or("output-omit-bias", false)?,
        separate_decoder_embedding: false,
        decoder_cell: DecoderCell::Ssru,
        start_from_zero_embedding: true,
        decoder_start_token_id: vocab_size as u32,
        eos_token_ids: vec![EOS],
        pad_token_id: EOS,
    };
    spec.validate(file)?;
    Ok(spec)
}
