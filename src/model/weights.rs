//! The model's weights on the GPU, laid out for the graph: projections that read the same
//! input are fused into one matrix (Q, K and V; the gate and linear halves of a gated
//! feed-forward; the cross-attention K and V of every decoder layer).

use super::names::{self, AttentionNames, FamilyNames, SsruNames, StackNames};
use super::sinusoids;
use super::spec::{DecoderCell, ModelSpec, NormKind, Positions, StackSpec};
use crate::error::{Error, Result};
use crate::formats::TensorSource;
use crate::gpu::{Gpu, Tensor};

pub struct Linear {
    /// [out_features, in_features]
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

pub struct Norm {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

pub struct EncoderLayer {
    pub self_norm: Norm,
    /// [3 * inner, d_model]: Q, K, V stacked.
    pub qkv: Linear,
    pub self_out: Linear,
    pub ffn_norm: Norm,
    /// [ffn_dim, d_model], or [2 * ffn_dim, d_model] (gate then linear) when gated.
    pub ffn_in: Linear,
    pub ffn_out: Linear,
}

/// What mixes a decoder layer's own positions (see `DecoderCell`).
pub enum DecoderMixer {
    SelfAttention {
        /// [3 * inner, d_model]: Q, K, V stacked.
        qkv: Linear,
        out: Linear,
    },
    /// [2 * d_model, d_model]: the candidate projection W, then the forget gate Wf (whose
    /// bias is the only one: the bias is [0; bf]).
    Ssru { gates: Linear },
}

pub struct DecoderLayer {
    /// The norm of the mixer's sublayer.
    pub self_norm: Norm,
    pub mixer: DecoderMixer,
    pub cross_norm: Norm,
    pub cross_q: Linear,
    pub cross_out: Linear,
    pub ffn_norm: Norm,
    pub ffn_in: Linear,
    pub ffn_out: Linear,
}

/// What one stack adds to its token embeddings, and its norm at the end.
pub struct StackEnds {
    /// [vocab, d_model]
    pub embedding: Tensor,
    /// Absolute positions [limit + offset, d_model] (BART family).
    pub positions: Option<Tensor>,
    pub embedding_norm: Option<Norm>,
    pub final_norm: Option<Norm>,
    /// T5's relative position bias [num_buckets, heads].
    pub relative_bias: Option<Tensor>,
}

pub struct Weights {
    pub encoder_ends: StackEnds,
    pub decoder_ends: StackEnds,
    pub encoder: Vec<EncoderLayer>,
    pub decoder: Vec<DecoderLayer>,
    /// [decoder_layers * 2 * inner, d_model]: K then V of each decoder layer's
    /// cross-attention, so one matmul projects the encoder output for every layer.
    pub cross_kv: Linear,
    /// [vocab, d_model] with the logits bias; the decoder embedding itself when tied.
    pub lm_head: Linear,
}

/// How the weights of linear layers are kept on the GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightFormat {
    #[default]
    F32,
    /// f16, packed two per u32, read with f32 accumulation: half the memory and bandwidth.
    /// Embeddings and norms stay f32; activations never leave f32, so T5's large
    /// feed-forward activations cannot overflow.
    F16,
    /// int8 with one scale per row: a quarter of the memory. Weights a checkpoint stores as
    /// int8 (Marian's intgemm8) are kept exactly; others are quantised per row (absmax).
    Int8,
}

impl WeightFormat {
    pub fn parse(name: &str) -> Result<WeightFormat> {
        match name {
            "f32" => Ok(WeightFormat::F32),
            "f16" => Ok(WeightFormat::F16),
            "int8" => Ok(WeightFormat::Int8),
            other => Err(Error::invalid(format!(
                "unknown weight format \"{other}\" (use f32, f16 or int8)"
            ))),
        }
    }
}

/// Per-row symmetric int8 quantisation of a [rows, cols] matrix: (values, row scales).
fn quantize_rows(data: &[f32], cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut values = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(data.len() / cols.max(1));
    for row in data.chunks(cols.max(1)) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        values.extend(
            row.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(scale);
    }
    (values, scales)
}

struct Loader<'a> {
    gpu: &'a Gpu,
    ckpt: &'a dyn TensorSource,
    spec: &'a ModelSpec,
    format: WeightFormat,
}

impl Loader<'_> {
    fn upload(&self, label: &str, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        Tensor::upload_f32(self.gpu, label, data, shape)
    }

    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.upload(name, &self.ckpt.tensor_shaped(name, shape)?, shape)
    }

    /// Weight matrices [rows_i, cols] (full tensor names) stacked into one, in the chosen
    /// format.
    fn matrix(&self, parts: &[(String, usize)], cols: usize) -> Result<Tensor> {
        let rows: usize = parts.iter().map(|(_, r)| r).sum();
        let label = parts.first().map_or("weights", |(name, _)| name.as_str());
        if self.format == WeightFormat::Int8 {
            let mut values = Vec::with_capacity(rows * cols);
            let mut scales = Vec::with_capacity(rows);
            for (name, part_rows) in parts {
                let shape = [*part_rows, cols];
                let (q, s) = match self.ckpt.quantized(name, &shape)? {
                    Some((q, scale)) => (q, vec![scale; *part_rows]),
                    None => quantize_rows(&self.ckpt.tensor_shaped(name, &shape)?, cols),
                };
                values.extend(q);
                scales.extend(s);
            }
            return Tensor::upload_int8(self.gpu, label, &values, &scales, &[rows, cols]);
        }
        let mut data = Vec::with_capacity(rows * cols);
        for (name, part_rows) in parts {
            data.extend(self.ckpt.tensor_shaped(name, &[*part_rows, cols])?);
        }
        match self.format {
            WeightFormat::F16 => Tensor::upload_f16(self.gpu, label, &data, &[rows, cols]),
            _ => self.upload(label, &data, &[rows, cols]),
        }
    }

    /// Several [rows_i, cols] weights (and their biases) stacked into one Linear.
    fn stacked(&self, parts: &[(String, usize)], cols: usize) -> Result<Linear> {
        let weights: Vec<(String, usize)> = parts
            .iter()
            .map(|(name, rows)| (format!("{name}.weight"), *rows))
            .collect();
        let bias = if self.spec.biases {
            let mut bias = Vec::new();
            for (name, rows) in parts {
                bias.extend(self.ckpt.tensor_shaped(&format!("{name}.bias"), &[*rows])?);
            }
            Some(self.upload(&parts[0].0, &bias, &[bias.len()])?)
        } else {
            None
        };
        Ok(Linear {
            weight: self.matrix(&weights, cols)?,
            bias,
        })
    }

    /// An SSRU cell's candidate and forget projections, stacked; only the forget gate has
    /// a bias.
    fn ssru_gates(&self, names: &SsruNames, i: usize) -> Result<Linear> {
        let d = self.spec.d_model;
        let prefix = names::layer(names.prefix, i);
        let weight = self.matrix(
            &[
                (format!("{prefix}..weight"), d),
                (format!("{prefix}.f.weight"), d),
            ],
            d,
        )?;
        let mut bias = vec![0.0; d];
        bias.extend(self.ckpt.tensor_shaped(&format!("{prefix}.f.bias"), &[d])?);
        Ok(Linear {
            weight,
            bias: Some(self.upload(&prefix, &bias, &[2 * d])?),
        })
    }

    fn linear(&self, name: String, rows: usize, cols: usize) -> Result<Linear> {
        self.stacked(&[(name, rows)], cols)
    }

    fn norm(&self, name: &str) -> Result<Norm> {
        let d = [self.spec.d_model];
        Ok(Norm {
            weight: self.tensor(&format!("{name}.weight"), &d)?,
            bias: match self.spec.norm {
                NormKind::LayerNorm => Some(self.tensor(&format!("{name}.bias"), &d)?),
                NormKind::RmsNorm => None,
            },
        })
    }

    fn attention_part(names: &AttentionNames, i: usize, proj: &str) -> String {
        format!("{}.{proj}", names::layer(names.prefix, i))
    }

    fn qkv(&self, names: &AttentionNames, i: usize, stack: &StackSpec) -> Result<Linear> {
        let inner = stack.inner_dim();
        let parts: Vec<(String, usize)> = [names.q, names.k, names.v]
            .iter()
            .map(|p| (Self::attention_part(names, i, p), inner))
            .collect();
        self.stacked(&parts, self.spec.d_model)
    }

    fn ffn_in(&self, names: &StackNames, i: usize, stack: &StackSpec) -> Result<Linear> {
        let ff = &names.feed_forward;
        match (self.spec.gated_ffn, ff.gated) {
            (true, Some((gate, linear))) => {
                let parts = [
                    (names::layer(gate, i), stack.ffn_dim),
                    (names::layer(linear, i), stack.ffn_dim),
                ];
                self.stacked(&parts, self.spec.d_model)
            }
            (true, None) => Err(Error::invalid(
                "the description asks for a gated feed-forward, which this family's checkpoints do not have",
            )),
            (false, _) => self.linear(names::layer(ff.input, i), stack.ffn_dim, self.spec.d_model),
        }
    }

    fn encoder_layer(&self, names: &StackNames, i: usize) -> Result<EncoderLayer> {
        let stack = &self.spec.encoder;
        let d = self.spec.d_model;
        let attn = &names.self_attention;
        Ok(EncoderLayer {
            self_norm: self.norm(&names::layer(names.self_attention_norm, i))?,
            qkv: self.qkv(attn, i, stack)?,
            self_out: self.linear(Self::attention_part(attn, i, attn.o), d, stack.inner_dim())?,
            ffn_norm: self.norm(&names::layer(names.feed_forward_norm, i))?,
            ffn_in: self.ffn_in(names, i, stack)?,
            ffn_out: self.linear(names::layer(names.feed_forward.output, i), d, stack.ffn_dim)?,
        })
    }

    fn decoder_layer(&self, family: &FamilyNames, i: usize) -> Result<DecoderLayer> {
        let names = &family.decoder;
        let stack = &self.spec.decoder;
        let d = self.spec.d_model;
        let attn = &names.self_attention;
        let cross = &family.cross_attention;
        let mixer = match (self.spec.decoder_cell, &family.ssru) {
            (DecoderCell::SelfAttention, _) => DecoderMixer::SelfAttention {
                qkv: self.qkv(attn, i, stack)?,
                out: self.linear(Self::attention_part(attn, i, attn.o), d, stack.inner_dim())?,
            },
            (DecoderCell::Ssru, Some(ssru)) => DecoderMixer::Ssru {
                gates: self.ssru_gates(ssru, i)?,
            },
            (DecoderCell::Ssru, None) => {
                return Err(Error::invalid(
                    "this checkpoint's family has no SSRU decoder",
                ));
            }
        };
        Ok(DecoderLayer {
            self_norm: self.norm(&names::layer(names.self_attention_norm, i))?,
            mixer,
            cross_norm: self.norm(&names::layer(family.cross_attention_norm, i))?,
            cross_q: self.linear(
                Self::attention_part(cross, i, cross.q),
                stack.inner_dim(),
                d,
            )?,
            cross_out: self.linear(
                Self::attention_part(cross, i, cross.o),
                d,
                stack.inner_dim(),
            )?,
            ffn_norm: self.norm(&names::layer(names.feed_forward_norm, i))?,
            ffn_in: self.ffn_in(names, i, stack)?,
            ffn_out: self.linear(names::layer(names.feed_forward.output, i), d, stack.ffn_dim)?,
        })
    }

    fn cross_kv(&self, cross: &AttentionNames) -> Result<Linear> {
        let inner = self.spec.decoder.inner_dim();
        let parts: Vec<(String, usize)> = (0..self.spec.decoder.layers)
            .flat_map(|i| {
                [
                    (Self::attention_part(cross, i, cross.k), inner),
                    (Self::attention_part(cross, i, cross.v), inner),
                ]
            })
            .collect();
        self.stacked(&parts, self.spec.d_model)
    }

    /// The absolute position table of a stack: stored, or computed for sinusoids.
    fn positions(&self, stored: Option<&str>) -> Result<Option<Tensor>> {
        let d = self.spec.d_model;
        match self.spec.positions {
            Positions::RelativeBuckets { .. } => Ok(None),
            Positions::Learned { offset, limit } => {
                let name = stored.ok_or_else(|| {
                    Error::invalid(
                        "the description asks for learned positions, which this family's checkpoints do not store",
                    )
                })?;
                Ok(Some(self.tensor(name, &[limit + offset, d])?))
            }
            Positions::Sinusoidal {
                offset,
                limit,
                layout,
            } => {
                let shape = [limit + offset, d];
                match stored.filter(|name| self.ckpt.contains(name)) {
                    Some(name) => Ok(Some(self.tensor(name, &shape)?)),
                    None => Ok(Some(self.upload(
                        "sinusoids",
                        &sinusoids::table(layout, shape[0], d),
                        &shape,
                    )?)),
                }
            }
        }
    }

    fn stack_ends(&self, names: &StackNames, embedding: Tensor, heads: usize) -> Result<StackEnds> {
        let relative_bias = match (self.spec.positions, names.relative_bias) {
            (Positions::RelativeBuckets { num_buckets, .. }, Some(name)) => {
                Some(self.tensor(name, &[num_buckets, heads])?)
            }
            _ => None,
        };
        let embedding_norm = match (self.spec.embedding_norm, names.embedding_norm) {
            (true, Some(name)) => Some(self.norm(name)?),
            _ => None,
        };
        Ok(StackEnds {
            embedding,
            positions: self.positions(names.positions)?,
            embedding_norm,
            final_norm: if self.spec.final_norm {
                Some(self.norm(names.final_norm)?)
            } else {
                None
            },
            relative_bias,
        })
    }

    fn lm_head(&self, names: &FamilyNames, decoder_embedding: &Tensor) -> Result<Linear> {
        let v = self.spec.vocab_size;
        let weight = if self.spec.tied_lm_head {
            decoder_embedding.clone()
        } else {
            self.matrix(&[(names.lm_head.to_string(), v)], self.spec.d_model)?
        };
        // Stored as [1, vocab]; checkpoints that never trained it may leave it out (zeros).
        let bias = match self.spec.logits_bias && self.ckpt.contains(names.logits_bias) {
            true => Some(self.tensor(names.logits_bias, &[1, v])?),
            false => None,
        };
        Ok(Linear { weight, bias })
    }
}

impl Weights {
    pub fn load(
        gpu: &Gpu,
        ckpt: &dyn TensorSource,
        spec: &ModelSpec,
        names: &FamilyNames,
        format: WeightFormat,
    ) -> Result<Weights> {
        let loader = Loader {
            gpu,
            ckpt,
            spec,
            format,
        };
        let d = spec.d_model;
        let shared_name = ckpt
            .first_of(names.embedding)
            .ok_or_else(|| Error::MissingTensor {
                file: ckpt.files(),
                name: names.embedding.join("\" or \""),
            })?;
        let encoder_vocab = ckpt.shape(shared_name)?.first().copied().unwrap_or(0);
        let embedding = if spec.start_from_zero_embedding {
            // The decoder's start "token" is a zero row after the vocabulary.
            let mut table = ckpt.tensor_shaped(shared_name, &[encoder_vocab, d])?;
            table.extend(std::iter::repeat_n(0.0, d));
            loader.upload(shared_name, &table, &[encoder_vocab + 1, d])?
        } else {
            loader.tensor(shared_name, &[encoder_vocab, d])?
        };
        let decoder_embedding = if spec.separate_decoder_embedding {
            loader.tensor(names.decoder_embedding, &[spec.vocab_size, d])?
        } else {
            if encoder_vocab != spec.vocab_size {
                return Err(Error::TensorShape {
                    file: ckpt.files(),
                    name: shared_name.to_string(),
                    expected: vec![spec.vocab_size, d],
                    found: vec![encoder_vocab, d],
                });
            }
            embedding.clone()
        };
        let lm_head = loader.lm_head(names, &decoder_embedding)?;
        Ok(Weights {
            encoder: (0..spec.encoder.layers)
                .map(|i| loader.encoder_layer(&names.encoder, i))
                .collect::<Result<Vec<_>>>()?,
            decoder: (0..spec.decoder.layers)
                .map(|i| loader.decoder_layer(names, i))
                .collect::<Result<Vec<_>>>()?,
            cross_kv: loader.cross_kv(&names.cross_attention)?,
            encoder_ends: loader.stack_ends(&names.encoder, embedding, spec.encoder.heads)?,
            decoder_ends: loader.stack_ends(
                &names.decoder,
                decoder_embedding,
                spec.decoder.heads,
            )?,
            lm_head,
        })
    }
}
