//! The model's weights on the GPU, laid out for the graph: projections that read the same
//! input are fused into one matrix (Q, K and V; the gate and linear halves of a gated
//! feed-forward; the cross-attention K and V of every decoder layer).

use super::checkpoint::Checkpoint;
use super::names::{self, AttentionNames, FamilyNames, StackNames};
use super::spec::{ModelSpec, Positions, StackSpec};
use crate::error::{Error, Result};
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

pub struct DecoderLayer {
    pub self_norm: Norm,
    pub qkv: Linear,
    pub self_out: Linear,
    pub cross_norm: Norm,
    pub cross_q: Linear,
    pub cross_out: Linear,
    pub ffn_norm: Norm,
    pub ffn_in: Linear,
    pub ffn_out: Linear,
}

pub struct Weights {
    /// [vocab, d_model]
    pub embedding: Tensor,
    /// [vocab, d_model]; the embedding itself when tied.
    pub lm_head: Tensor,
    pub encoder: Vec<EncoderLayer>,
    pub encoder_final_norm: Option<Norm>,
    pub decoder: Vec<DecoderLayer>,
    pub decoder_final_norm: Option<Norm>,
    /// [decoder_layers * 2 * inner, d_model]: K then V of each decoder layer's
    /// cross-attention, so one matmul projects the encoder output for every layer.
    pub cross_kv: Linear,
    /// [num_buckets, heads] (T5).
    pub encoder_relative_bias: Option<Tensor>,
    pub decoder_relative_bias: Option<Tensor>,
}

struct Loader<'a> {
    gpu: &'a Gpu,
    ckpt: &'a Checkpoint,
    spec: &'a ModelSpec,
}

impl Loader<'_> {
    fn upload(&self, label: &str, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        Tensor::upload_f32(self.gpu, label, data, shape)
    }

    /// Several [rows_i, cols] weights stacked into one Linear.
    fn stacked(&self, parts: &[(String, usize)], cols: usize) -> Result<Linear> {
        let mut data = Vec::new();
        let mut rows = 0;
        for (name, part_rows) in parts {
            data.extend(
                self.ckpt
                    .tensor_shaped(&format!("{name}.weight"), &[*part_rows, cols])?,
            );
            rows += part_rows;
        }
        let label = &parts[0].0;
        Ok(Linear {
            weight: self.upload(label, &data, &[rows, cols])?,
            bias: None,
        })
    }

    fn linear(&self, name: String, rows: usize, cols: usize) -> Result<Linear> {
        self.stacked(&[(name, rows)], cols)
    }

    fn norm(&self, name: &str) -> Result<Norm> {
        let d = self.spec.d_model;
        Ok(Norm {
            weight: self.upload(
                name,
                &self.ckpt.tensor_shaped(&format!("{name}.weight"), &[d])?,
                &[d],
            )?,
            bias: None,
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
        if self.spec.gated_ffn {
            let parts = [
                (names::layer(ff.gate, i), stack.ffn_dim),
                (names::layer(ff.linear, i), stack.ffn_dim),
            ];
            self.stacked(&parts, self.spec.d_model)
        } else {
            self.linear(names::layer(ff.input, i), stack.ffn_dim, self.spec.d_model)
        }
    }

    fn relative_bias(&self, name: Option<&str>, heads: usize) -> Result<Option<Tensor>> {
        let Positions::RelativeBuckets { num_buckets, .. } = self.spec.positions;
        let Some(name) = name else { return Ok(None) };
        let data = self.ckpt.tensor_shaped(name, &[num_buckets, heads])?;
        Ok(Some(self.upload(name, &data, &[num_buckets, heads])?))
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
        Ok(DecoderLayer {
            self_norm: self.norm(&names::layer(names.self_attention_norm, i))?,
            qkv: self.qkv(attn, i, stack)?,
            self_out: self.linear(Self::attention_part(attn, i, attn.o), d, stack.inner_dim())?,
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
}

impl Weights {
    pub fn load(
        gpu: &Gpu,
        ckpt: &Checkpoint,
        spec: &ModelSpec,
        names: &FamilyNames,
    ) -> Result<Weights> {
        let loader = Loader { gpu, ckpt, spec };
        let (v, d) = (spec.vocab_size, spec.d_model);
        let embedding_name =
            ckpt.first_of(names.embedding)
                .ok_or_else(|| Error::MissingTensor {
                    file: "model.safetensors".into(),
                    name: names.embedding.join("\" or \""),
                })?;
        let embedding = loader.upload(
            embedding_name,
            &ckpt.tensor_shaped(embedding_name, &[v, d])?,
            &[v, d],
        )?;
        let lm_head = if spec.tied_lm_head {
            embedding.clone()
        } else {
            loader.upload(
                names.lm_head,
                &ckpt.tensor_shaped(names.lm_head, &[v, d])?,
                &[v, d],
            )?
        };
        let encoder = (0..spec.encoder.layers)
            .map(|i| loader.encoder_layer(&names.encoder, i))
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..spec.decoder.layers)
            .map(|i| loader.decoder_layer(names, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Weights {
            embedding,
            lm_head,
            encoder,
            encoder_final_norm: names
                .encoder
                .final_norm
                .map(|n| loader.norm(n))
                .transpose()?,
            decoder,
            decoder_final_norm: names
                .decoder
                .final_norm
                .map(|n| loader.norm(n))
                .transpose()?,
            cross_kv: loader.cross_kv(&names.cross_attention)?,
            encoder_relative_bias: loader
                .relative_bias(names.encoder.relative_bias, spec.encoder.heads)?,
            decoder_relative_bias: loader
                .relative_bias(names.decoder.relative_bias, spec.decoder.heads)?,
        })
    }
}
