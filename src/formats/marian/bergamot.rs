//! The bergamot config of a Firefox Translations folder (`config.intgemm8bitalpha.yml` and
//! the like): which files hold the model and its shortlist, and the length factor.

use serde_yaml::Value;

use crate::error::{Error, Result};
use crate::formats::source::plain_file_name;

/// What a bergamot config (`config.intgemm8bitalpha.yml` and the like) says about a Marian
/// model folder.
#[derive(Debug, PartialEq)]
pub struct BergamotManifest {
    pub model: String,
    pub shortlist: Option<String>,
    pub max_length_factor: Option<f32>,
}

/// The config files a Marian model folder may name its files in, in order of preference.
pub const BERGAMOT_CONFIGS: [&str; 3] = [
    "config.intgemm8bitalpha.yml",
    "config.intgemm8bit.yml",
    "config.yml",
];

/// Reads a bergamot config: `models` (the first is used), `shortlist` (its first entry is
/// the file) and `max-length-factor`.
pub fn bergamot_manifest(file: &str, yml: &str) -> Result<BergamotManifest> {
    let value: Value = serde_yaml::from_str(yml).map_err(|e| Error::format(file, e))?;
    let first = |key: &str| -> Result<Option<String>> {
        match value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Sequence(items)) => match items.first() {
                Some(Value::String(name)) => plain_file_name(file, name).map(Some),
                _ => Err(Error::format(
                    file,
                    format!("\"{key}\" must list a file name first"),
                )),
            },
            Some(_) => Err(Error::format(file, format!("\"{key}\" must be a list"))),
        }
    };
    let model = first("models")?
        .ok_or_else(|| Error::format(file, "\"models\" must name the model file"))?;
    let max_length_factor = match value.get("max-length-factor") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|f| f.is_finite() && *f > 0.0)
                .ok_or_else(|| {
                    Error::format(file, "\"max-length-factor\" must be a positive number")
                })? as f32,
        ),
    };
    Ok(BergamotManifest {
        model,
        shortlist: first("shortlist")?,
        max_length_factor,
    })
}
