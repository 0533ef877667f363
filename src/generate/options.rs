//! Generation settings: a model's defaults from `generation_config.json` (falling back to
//! `config.json`, then to transformers' own defaults) and the options a caller overrides.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::ModelSpec;
use crate::model::config_json::ConfigJson;

/// transformers' default `max_length` when neither file sets one (it counts the start token).
const DEFAULT_MAX_LENGTH: usize = 20;

/// What the caller may set; `None` keeps the model's default.
#[derive(Clone, Debug, Default)]
pub struct GenerationOptions {
    pub max_new_tokens: Option<usize>,
}

/// Settings resolved for one model.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    pub decoder_start_token_id: u32,
    pub eos_token_ids: Vec<u32>,
}

impl GenerationConfig {
    pub fn resolve(spec: &ModelSpec, generation_config: Option<&str>) -> Result<GenerationConfig> {
        let map = match generation_config {
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(Error::format(
                        "generation_config.json",
                        "expected a JSON object",
                    ));
                }
                Err(e) => return Err(Error::format("generation_config.json", e)),
            },
            None => Default::default(),
        };
        let cfg = ConfigJson {
            map: &map,
            file: "generation_config.json",
        };
        let max_new_tokens = if cfg.is_set("max_new_tokens") {
            cfg.usize("max_new_tokens")?
        } else {
            cfg.usize_or("max_length", DEFAULT_MAX_LENGTH)?
                .saturating_sub(1)
        };
        let eos = cfg.token_ids("eos_token_id")?;
        Ok(GenerationConfig {
            max_new_tokens,
            decoder_start_token_id: cfg.usize_or(
                "decoder_start_token_id",
                spec.decoder_start_token_id as usize,
            )? as u32,
            eos_token_ids: if eos.is_empty() {
                spec.eos_token_ids.clone()
            } else {
                eos
            },
        })
    }

    /// These defaults with the caller's options applied.
    pub fn with(&self, options: &GenerationOptions) -> GenerationConfig {
        GenerationConfig {
            max_new_tokens: options.max_new_tokens.unwrap_or(self.max_new_tokens),
            ..self.clone()
        }
    }
}
