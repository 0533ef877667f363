//! A Marian binary model seen as a tensor source for the shared weight loader: names of the
//! Marian naming table (`model::names`' MARIAN_NATIVE) are translated to Marian's own, and
//! shapes are given in the loader's convention ([out, in] for linear weights).

use std::ops::Range;

use super::bin::MarianBin;
use crate::error::{Error, Result};
use crate::formats::checkpoint::row_len;
use crate::formats::tensors::TensorSource;

pub struct MarianSource {
    bin: MarianBin,
}

impl MarianSource {
    pub fn new(bin: MarianBin) -> MarianSource {
        MarianSource { bin }
    }

    /// The shape the loader sees: Marian states linear weights as [in, out] but stores them
    /// transposed, which is the loader's [out, in]; the embedding is stored as stated.
    fn logical_shape(&self, marian: &str) -> Result<Vec<usize>> {
        let mut shape = self.bin.shape(marian)?;
        let is_linear_weight = marian.contains("_W") && shape.len() == 2 && shape[0] > 1;
        if is_linear_weight {
            shape.reverse();
        }
        Ok(shape)
    }

    fn check_shape(&self, marian: &str, expected: &[usize]) -> Result<()> {
        let found = self.logical_shape(marian)?;
        // Marian keeps vectors as [1, n]; compare without unit dimensions.
        let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
        if squeeze(&found) != squeeze(expected) {
            return Err(Error::TensorShape {
                file: self.bin.file().to_string(),
                name: marian.to_string(),
                expected: expected.to_vec(),
                found,
            });
        }
        Ok(())
    }
}

/// Marian's name for a name of the Marian table: `stem.p.weight` is `stem_Wp`, `stem.p.bias`
/// is `stem_bp`, `norm.weight` is `norm_scale` and `norm.bias` is `norm_bias`; other names
/// are Marian's already.
fn marian_name(name: &str) -> String {
    let (base, matrix, vector) = if let Some(base) = name.strip_suffix(".weight") {
        (base, "W", "scale")
    } else if let Some(base) = name.strip_suffix(".bias") {
        (base, "b", "bias")
    } else {
        return name.to_string();
    };
    match base.rsplit_once('.') {
        Some((stem, proj)) => format!("{stem}_{matrix}{proj}"),
        None => format!("{base}_{vector}"),
    }
}

impl TensorSource for MarianSource {
    fn files(&self) -> String {
        self.bin.file().to_string()
    }

    fn contains(&self, name: &str) -> bool {
        self.bin.contains(&marian_name(name))
    }

    fn shape(&self, name: &str) -> Result<Vec<usize>> {
        self.logical_shape(&marian_name(name))
    }

    /// The model file is small and held whole: rows are cut from the whole tensor.
    async fn rows(&self, name: &str, expected: &[usize], rows: Range<usize>) -> Result<Vec<f32>> {
        let marian = marian_name(name);
        self.check_shape(&marian, expected)?;
        let values = self.bin.f32(&marian)?;
        let row = row_len(expected);
        values
            .get(rows.start * row..rows.end * row)
            .map(<[f32]>::to_vec)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "rows {rows:?} of tensor \"{name}\" lie outside its shape {expected:?}"
                ))
            })
    }

    fn quantized(&self, name: &str, expected: &[usize]) -> Result<Option<(Vec<i8>, f32)>> {
        let marian = marian_name(name);
        self.check_shape(&marian, expected)?;
        Ok(self
            .bin
            .int8(&marian)?
            .map(|(values, multiplier)| (values.to_vec(), multiplier.recip())))
    }
}

#[cfg(test)]
mod tests {
    use super::marian_name;

    #[test]
    fn table_names_map_to_marian_names() {
        let cases = [
            ("encoder_l1_self.q.weight", "encoder_l1_self_Wq"),
            ("encoder_l1_self.q.bias", "encoder_l1_self_bq"),
            ("encoder_l1_ffn.2.weight", "encoder_l1_ffn_W2"),
            ("decoder_l2_rnn.f.bias", "decoder_l2_rnn_bf"),
            ("decoder_l2_rnn..weight", "decoder_l2_rnn_W"),
            (
                "encoder_l3_self_Wo_ln.weight",
                "encoder_l3_self_Wo_ln_scale",
            ),
            ("encoder_l3_self_Wo_ln.bias", "encoder_l3_self_Wo_ln_bias"),
            ("Wemb", "Wemb"),
            ("decoder_ff_logit_out_b", "decoder_ff_logit_out_b"),
        ];
        for (table, marian) in cases {
            assert_eq!(marian_name(table), marian, "{table}");
        }
    }
}
