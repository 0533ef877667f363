//! Hugging Face's `config.json` as one model description: typed reads whose errors name the
//! file and the field, and each family's fields mapped onto a `ModelSpec`.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::spec::{
    Activation, DecoderCell, Family, ModelSpec, NormKind, Positions, Sinusoids, StackSpec,
};

const FILE: &str = "config.json";

/// Typed access to the fields of a config.json, with errors that name the field.
struct ConfigJson<'a> {
    map: &'a Map<String, Value>,
}

impl ConfigJson<'_> {
    fn usize(&self, key: &str) -> Result<usize> {
        match self.map.get(key) {
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    config_error(format!(
                        "\"{key}\" must be a non-negative integer, found {v}"
                    ))
                }),
            None => Err(config_error(format!("missing field \"{key}\""))),
        }
    }

    fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        if self.is_set(key) {
            self.usize(key)
        } else {
            Ok(default)
        }
    }

    fn f32_or(&self, key: &str, default: f32) -> Result<f32> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|n| n as f32)
                .ok_or_else(|| config_error(format!("\"{key}\" must be a number, found {v}"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| config_error(format!("\"{key}\" must be true or false, found {v}"))),
        }
    }

    fn str_or<'v>(&'v self, key: &str, default: &'v str) -> Result<&'v str> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| config_error(format!("\"{key}\" must be a string, found {v}"))),
        }
    }

    /// A nested configuration (T5Gemma's `encoder` and `decoder`).
    fn object(&self, key: &str) -> Result<ConfigJson<'_>> {
        match self.map.get(key) {
            Some(Value::Object(map)) => Ok(ConfigJson { map }),
            Some(v) => Err(config_error(format!(
                "\"{key}\" must be an object, found {v}"
            ))),
            None => Err(config_error(format!("missing field \"{key}\""))),
        }
    }

    fn is_set(&self, key: &str) -> bool {
        !matches!(self.map.get(key), None | Some(Value::Null))
    }

    /// `eos_token_id` may be one id or a list.
    fn token_ids(&self, key: &str) -> Result<Vec<u32>> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|v| self.token_id(key, v)).collect(),
            Some(v) => Ok(vec![self.token_id(key, v)?]),
        }
    }

    fn token_id(&self, key: &str, v: &Value) -> Result<u32> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| config_error(format!("\"{key}\" must hold token ids, found {v}")))
    }
}

/// The model description of a `config.json`.
pub fn spec_from_config_json(text: &str) -> Result<ModelSpec> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| config_error(format!("not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(config_error("expected a JSON object"));
    };
    let cfg = ConfigJson { map: &map };
    let model_type = cfg.str_or("model_type", "")?;
    if model_type.is_empty() {
        return Err(config_error("missing field \"model_type\""));
    }
    let spec = match family(model_type)? {
        Family::T5 => t5_spec(&cfg)?,
        Family::T5Gemma => t5gemma_spec(&cfg)?,
        family => bart_like_spec(&cfg, family)?,
    };
    spec.validate(FILE)?;
    Ok(spec)
}

const SUPPORTED: &str = "t5, mt5, bart, mbart, marian, m2m_100 (also NLLB), pegasus, t5gemma";

fn family(model_type: &str) -> Result<Family> {
    Ok(match model_type {
        "t5" | "mt5" => Family::T5,
        "bart" => Family::Bart,
        "mbart" => Family::MBart,
        "marian" => Family::Marian,
        "m2m_100" => Family::M2M100,
        "pegasus" => Family::Pegasus,
        "t5gemma" => Family::T5Gemma,
        other => {
            return Err(config_error(format!(
                "unsupported model_type \"{other}\" (supported: {})",
                SUPPORTED
            )));
        }
    })
}

/// Hugging Face's `activation_function` / `dense_act_fn` names.
fn activation(name: &str) -> Result<Activation> {
    Ok(match name {
        "relu" => Activation::Relu,
        "gelu" => Activation::Gelu,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
        "silu" | "swish" => Activation::Silu,
        "linear" | "identity" => Activation::Identity,
        other => {
            return Err(config_error(format!(
                "unsupported activation function \"{other}\""
            )));
        }
    })
}

fn config_error(message: impl Into<String>) -> Error {
    Error::format(FILE, message.into())
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
        width: d_model,
        layers,
        heads,
        kv_heads: heads,
        head_dim,
        ffn_dim,
        windows: Vec::new(),
        embed_scale: 1.0,
    };
    // "gated-gelu" (T5 v1.1, Flan-T5) or "relu" (original T5). transformers derives the
    // activation from this field alone, and maps the legacy "gated-gelu" to the tanh form.
    let proj = cfg.str_or("feed_forward_proj", "relu")?;
    let (gated_ffn, act_name) = match proj.strip_prefix("gated-") {
        Some("gelu") => (true, "gelu_new"),
        Some(act) => (true, act),
        None => (false, proj),
    };
    let activation = activation(act_name)
        .map_err(|_| config_error(format!("unsupported \"feed_forward_proj\" \"{proj}\"")))?;
    let tied = cfg.bool_or("tie_word_embeddings", true)?;
    // transformers 5 names the d_model^-0.5 rescaling of tied T5 models; older configs imply it.
    let scaled = cfg.bool_or("scale_decoder_outputs", tied)?;
    let pad = cfg.usize_or("pad_token_id", 0)? as u32;
    Ok(ModelSpec {
        family: Family::T5,
        vocab_size: cfg.usize("vocab_size")?,
        encoder: stack(encoder_layers),
        decoder: stack(cfg.usize_or("num_decoder_layers", encoder_layers)?),
        norm: NormKind::RmsNorm,
        norm_eps: cfg.f32_or("layer_norm_epsilon", 1e-6)?,
        norm_weight_offset: 0.0,
        pre_norm: true,
        final_norm: true,
        post_sublayer_norm: false,
        embedding_norm: false,
        positions: Positions::RelativeBuckets {
            num_buckets: cfg.usize_or("relative_attention_num_buckets", 32)?,
            max_distance: cfg.usize_or("relative_attention_max_distance", 128)?,
        },
        activation,
        gated_ffn,
        biases: false,
        scaled_attention: false,
        query_scalar: None,
        attention_softcap: None,
        logits_softcap: None,
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

/// BART, mBART, Marian, M2M100 and Pegasus share one config layout and one graph; they differ in
/// norm placement, embedding norm, final norms, positions and the logits bias.
fn bart_like_spec(cfg: &ConfigJson, family: Family) -> Result<ModelSpec> {
    let d_model = cfg.usize("d_model")?;
    let embed_scale = if cfg.bool_or("scale_embedding", false)? {
        (d_model as f32).sqrt()
    } else {
        1.0
    };
    let stack = |prefix: &str| -> Result<StackSpec> {
        let heads_key = format!("{prefix}_attention_heads");
        let heads = cfg.usize(&heads_key)?;
        if heads == 0 || !d_model.is_multiple_of(heads) {
            return Err(config_error(format!(
                "\"d_model\" {d_model} is not divisible by \"{heads_key}\" {heads}"
            )));
        }
        Ok(StackSpec {
            width: d_model,
            layers: cfg.usize(&format!("{prefix}_layers"))?,
            heads,
            kv_heads: heads,
            head_dim: d_model / heads,
            ffn_dim: cfg.usize(&format!("{prefix}_ffn_dim"))?,
            windows: Vec::new(),
            embed_scale,
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
        // Marian's sinusoids, mBART's pre-norm with final norms, no embedding norm.
        Family::Pegasus => {
            let layout = Sinusoids::Marian;
            (
                true,
                false,
                true,
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
        vocab_size: decoder_vocab,
        encoder,
        decoder,
        norm: NormKind::LayerNorm,
        norm_eps: 1e-5,
        norm_weight_offset: 0.0,
        pre_norm,
        final_norm,
        post_sublayer_norm: false,
        embedding_norm,
        positions,
        activation: activation(cfg.str_or("activation_function", "gelu")?)?,
        gated_ffn: false,
        biases: true,
        scaled_attention: true,
        query_scalar: None,
        attention_softcap: None,
        logits_softcap: None,
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

/// One stack of a T5Gemma config (its `encoder` or `decoder` object), with
/// `T5GemmaModuleConfig`'s defaults for what it leaves out.
fn t5gemma_stack(stack: &ConfigJson) -> Result<StackSpec> {
    let width = stack.usize("hidden_size")?;
    let heads = stack.usize("num_attention_heads")?;
    let layers = stack.usize("num_hidden_layers")?;
    let window = stack.usize_or("sliding_window", 4096)?;
    let windows = match stack.map.get("layer_types") {
        // transformers' default: every other layer slides, the first one included.
        None | Some(Value::Null) => (0..layers)
            .map(|i| (i % 2 == 0).then_some(window))
            .collect(),
        Some(Value::Array(types)) => (types.iter())
            .map(|kind| match kind.as_str() {
                Some("sliding_attention") => Ok(Some(window)),
                Some("full_attention") => Ok(None),
                _ => Err(config_error(format!(
                    "\"layer_types\" holds \"sliding_attention\" or \"full_attention\", found {kind}"
                ))),
            })
            .collect::<Result<_>>()?,
        Some(v) => return Err(config_error(format!("\"layer_types\" must be a list, found {v}"))),
    };
    Ok(StackSpec {
        width,
        layers,
        heads,
        kv_heads: stack.usize_or("num_key_value_heads", 4)?,
        head_dim: stack.usize_or("head_dim", 256)?,
        ffn_dim: stack.usize("intermediate_size")?,
        windows,
        // transformers multiplies by torch.tensor(hidden_size ** 0.5): a double, then f32.
        embed_scale: (width as f64).sqrt() as f32,
    })
}

/// A soft cap: `default` where the key is absent (transformers' default), none where it is
/// null or not positive.
fn softcap(stack: &ConfigJson, key: &str, default: f32) -> Result<Option<f32>> {
    Ok(match stack.map.get(key) {
        None => Some(default),
        Some(Value::Null) => None,
        Some(_) => Some(stack.f32_or(key, 0.0)?).filter(|cap| *cap > 0.0),
    })
}

/// A setting both stacks of a T5Gemma config must agree on, as this engine keeps one.
fn shared<T: PartialEq + std::fmt::Debug>(key: &str, encoder: T, decoder: T) -> Result<T> {
    match encoder == decoder {
        true => Ok(decoder),
        false => Err(config_error(format!(
            "the encoder's \"{key}\" ({encoder:?}) differs from the decoder's ({decoder:?})"
        ))),
    }
}

/// The rotary base: transformers 5's `rope_parameters` (default type only), or the older
/// `rope_theta`.
fn rope_theta(stack: &ConfigJson) -> Result<f32> {
    if stack.is_set("rope_parameters") {
        let rope = stack.object("rope_parameters")?;
        let kind = rope.str_or("rope_type", "default")?;
        if kind != "default" {
            return Err(config_error(format!(
                "rope_type \"{kind}\" is not supported (default)"
            )));
        }
        return rope.f32_or("rope_theta", 10000.0);
    }
    stack.f32_or("rope_theta", 10000.0)
}

/// T5Gemma: nested `encoder` and `decoder` Gemma configs. Every sublayer is wrapped in two
/// RMSNorms (1 + weight), attention is grouped-query with rotary positions, scaled by
/// `query_pre_attn_scalar`, soft-capped, and slides over a window in the layers
/// `layer_types` says; logits are soft-capped too.
fn t5gemma_spec(cfg: &ConfigJson) -> Result<ModelSpec> {
    let (enc, dec) = (cfg.object("encoder")?, cfg.object("decoder")?);
    // The decoder's cross-attention reads the encoder's output: transformers sets its
    // `cross_attention_hidden_size` to the encoder's width whatever the file says.
    let encoder = t5gemma_stack(&enc)?;
    let decoder = t5gemma_stack(&dec)?;
    let str_field = |stack: &ConfigJson, key: &str, default: &str| -> Result<String> {
        Ok(stack.str_or(key, default)?.to_string())
    };
    let act = shared(
        "hidden_activation",
        str_field(&enc, "hidden_activation", "gelu_pytorch_tanh")?,
        str_field(&dec, "hidden_activation", "gelu_pytorch_tanh")?,
    )?;
    let pad = cfg.usize_or("pad_token_id", dec.usize_or("pad_token_id", 0)?)? as u32;
    let eos = match cfg.token_ids("eos_token_id")? {
        ids if ids.is_empty() => eos_ids(&dec, 1)?,
        ids => ids,
    };
    // T5Gemma shifts labels right behind the decoder's bos token.
    let start = cfg.usize_or("decoder_start_token_id", dec.usize_or("bos_token_id", 2)?)?;
    Ok(ModelSpec {
        family: Family::T5Gemma,
        vocab_size: dec.usize("vocab_size")?,
        norm: NormKind::RmsNorm,
        norm_eps: shared(
            "rms_norm_eps",
            enc.f32_or("rms_norm_eps", 1e-6)?,
            dec.f32_or("rms_norm_eps", 1e-6)?,
        )?,
        norm_weight_offset: 1.0,
        pre_norm: true,
        final_norm: true,
        post_sublayer_norm: true,
        embedding_norm: false,
        positions: Positions::Rotary {
            theta: shared("rope_theta", rope_theta(&enc)?, rope_theta(&dec)?)?,
            limit: shared(
                "max_position_embeddings",
                enc.usize_or("max_position_embeddings", 8192)?,
                dec.usize_or("max_position_embeddings", 8192)?,
            )?,
        },
        activation: activation(&act)?,
        gated_ffn: true,
        biases: shared(
            "attention_bias",
            enc.bool_or("attention_bias", false)?,
            dec.bool_or("attention_bias", false)?,
        )?,
        scaled_attention: true,
        query_scalar: Some(shared(
            "query_pre_attn_scalar",
            enc.f32_or("query_pre_attn_scalar", 256.0)?,
            dec.f32_or("query_pre_attn_scalar", 256.0)?,
        )?),
        attention_softcap: shared(
            "attn_logit_softcapping",
            softcap(&enc, "attn_logit_softcapping", 50.0)?,
            softcap(&dec, "attn_logit_softcapping", 50.0)?,
        )?,
        logits_softcap: softcap(&dec, "final_logit_softcapping", 30.0)?,
        tied_lm_head: cfg.bool_or("tie_word_embeddings", true)?,
        lm_head_scale: 1.0,
        logits_bias: false,
        separate_decoder_embedding: true,
        decoder_cell: DecoderCell::SelfAttention,
        start_from_zero_embedding: false,
        decoder_start_token_id: start as u32,
        eos_token_ids: eos,
        pad_token_id: pad,
        encoder,
        decoder,
    })
}
