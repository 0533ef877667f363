//! One normalised description of an encoder-decoder model, built from Hugging Face's
//! `config.json`. The graph reads only this; families differ here, in data.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ops::{Activation, NormKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    T5,
}

impl Family {
    pub fn from_model_type(model_type: &str) -> Result<Family> {
        match model_type {
            "t5" | "mt5" => Ok(Family::T5),
            other => Err(config_error(format!(
                "unsupported model_type \"{other}\" (supported: t5, mt5)"
            ))),
        }
    }
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

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Positions {
    /// T5: a learned bias per head for buckets of relative distance, shared by all layers.
    RelativeBuckets {
        num_buckets: usize,
        max_distance: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub family: Family,
    pub d_model: usize,
    pub vocab_size: usize,
    pub encoder: StackSpec,
    pub decoder: StackSpec,
    pub norm: NormKind,
    pub norm_eps: f32,
    pub positions: Positions,
    /// Multiplies token embeddings (√d_model where `scale_embedding` is set).
    pub embed_scale: f32,
    pub activation: Activation,
    /// T5 v1.1 gated feed-forward: act(x·W0ᵀ) * (x·W1ᵀ).
    pub gated_ffn: bool,
    /// Multiplies q·k (T5 uses none: 1).
    pub attention_scale: f32,
    pub tied_lm_head: bool,
    /// Multiplies the decoder output before the LM head (T5 tied: d_model^-0.5).
    pub lm_head_scale: f32,
    pub decoder_start_token_id: u32,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: u32,
}

/// Typed access to the fields of a JSON config file, with errors that name file and field.
pub(crate) struct ConfigJson<'a> {
    pub map: &'a Map<String, Value>,
    pub file: &'static str,
}

impl ConfigJson<'_> {
    pub fn error(&self, message: String) -> Error {
        Error::format(self.file, message)
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        match self.map.get(key) {
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                self.error(format!(
                    "\"{key}\" must be a non-negative integer, found {v}"
                ))
            }),
            None => Err(config_error(format!("missing field \"{key}\""))),
        }
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        if self.is_set(key) {
            self.usize(key)
        } else {
            Ok(default)
        }
    }

    pub fn f32_or(&self, key: &str, default: f32) -> Result<f32> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|n| n as f32)
                .ok_or_else(|| self.error(format!("\"{key}\" must be a number, found {v}"))),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.error(format!("\"{key}\" must be true or false, found {v}"))),
        }
    }

    pub fn str_or<'v>(&'v self, key: &str, default: &'v str) -> Result<&'v str> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.error(format!("\"{key}\" must be a string, found {v}"))),
        }
    }

    pub fn is_set(&self, key: &str) -> bool {
        !matches!(self.map.get(key), None | Some(Value::Null))
    }

    /// `eos_token_id` may be one id or a list.
    pub fn token_ids(&self, key: &str) -> Result<Vec<u32>> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|v| self.token_id(key, v)).collect(),
            Some(v) => Ok(vec![self.token_id(key, v)?]),
        }
    }

    fn token_id(&self, key: &str, v: &Value) -> Result<u32> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.error(format!("\"{key}\" must hold token ids, found {v}")))
    }
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
        };
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<()> {
        let positive = [
            ("d_model", self.d_model),
            ("vocab_size", self.vocab_size),
            ("num_heads", self.encoder.heads.min(self.decoder.heads)),
            ("d_kv", self.encoder.head_dim.min(self.decoder.head_dim)),
            ("d_ff", self.encoder.ffn_dim.min(self.decoder.ffn_dim)),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(config_error(format!("\"{field}\" must be positive")));
            }
        }
        if self.decoder_start_token_id as usize >= self.vocab_size {
            return Err(config_error(format!(
                "\"decoder_start_token_id\" {} is outside the vocabulary of {}",
                self.decoder_start_token_id, self.vocab_size
            )));
        }
        Ok(())
    }
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
        positions: Positions::RelativeBuckets {
            num_buckets: cfg.usize_or("relative_attention_num_buckets", 32)?,
            max_distance: cfg.usize_or("relative_attention_max_distance", 128)?,
        },
        embed_scale: 1.0,
        activation,
        gated_ffn,
        attention_scale: 1.0,
        tied_lm_head: tied,
        lm_head_scale: if scaled {
            (d_model as f32).powf(-0.5)
        } else {
            1.0
        },
        decoder_start_token_id: cfg.usize_or("decoder_start_token_id", pad as usize)? as u32,
        eos_token_ids: {
            let ids = cfg.token_ids("eos_token_id")?;
            if ids.is_empty() { vec![1] } else { ids }
        },
        pad_token_id: pad,
    })
}

fn config_error(message: impl Into<String>) -> Error {
    Error::format("config.json", message.into())
}
