//! The model's weights on the GPU, laid out for the graph: projections that read the same
//! input are fused into one matrix (Q, K and V; the gate and linear halves of a gated
//! feed-forward; the cross-attention K and V of every decoder layer).

use super::names::{self, AttentionNames, FamilyNames, SsruNames, StackNames};
use super::sinusoids;
use super::spec::{DecoderCell, ModelSpec, NormKind, Positions, StackSpec};
use crate::error::{Error, Result};
use crate::formats::TensorSource;
use crate::gpu::{Element, Gpu, RowBlocks, Tensor, TensorWriter};
pub use crate::ops::norm::Norm;

pub struct Linear {
    /// [out_features, in_features], in row blocks where it exceeds the binding limit.
    pub weight: RowBlocks,
    /// [out_features], in blocks of the weight's rows.
    pub bias: Option<RowBlocks>,
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
    pub embedding: RowBlocks,
    /// Absolute positions [limit + offset, d_model] (BART family).
    pub positions: Option<RowBlocks>,
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
    /// Norms, biases and position tables stay f32; activations never leave f32, so T5's
    /// large feed-forward activations cannot overflow.
    F16,
    /// int8 with one scale per row: a quarter of the memory. Weights a checkpoint stores as
    /// int8 (Marian's intgemm8) are kept exactly; others are quantised per row (absmax).
    /// Both apply to token embeddings and the LM head as to every linear layer.
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

/// Rows read and converted at a time: host memory holds one block of a tensor, never the
/// whole of it (a large vocabulary's embedding is a gigabyte in f32).
const BLOCK_BYTES: usize = 16 << 20;

struct Loader<'a, T> {
    gpu: &'a Gpu,
    ckpt: &'a T,
    spec: &'a ModelSpec,
    format: WeightFormat,
}

impl<T: TensorSource> Loader<'_, T> {
    /// A table of rows kept in f32 (positions), in blocks where it must be.
    async fn table(&self, name: &str, shape: &[usize]) -> Result<RowBlocks> {
        let mut writer = TensorWriter::new(self.gpu, name, Element::F32, shape)?;
        self.write(&mut writer, name, shape).await?;
        writer.finish()
    }

    /// Writes tensor `name` of `shape` into `writer`, a block of rows at a time.
    async fn write(
        &self,
        writer: &mut TensorWriter<'_>,
        name: &str,
        shape: &[usize],
    ) -> Result<()> {
        let rows = shape.first().copied().unwrap_or(1);
        let row_bytes = 4 * shape.iter().skip(1).product::<usize>().max(1);
        let block = (BLOCK_BYTES / row_bytes).max(1);
        for start in (0..rows).step_by(block) {
            let end = (start + block).min(rows);
            writer.rows(&self.ckpt.rows(name, shape, start..end).await?)?;
        }
        Ok(())
    }

    /// A tensor kept in f32 in one buffer (norms, biases, relative position buckets).
    async fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let mut writer = TensorWriter::new(self.gpu, name, Element::F32, shape)?;
        self.write(&mut writer, name, shape).await?;
        writer.finish_one()
    }

    /// The bias `values` of `weight`, in blocks of the same rows.
    fn bias(&self, label: &str, values: &[f32], weight: &RowBlocks) -> Result<RowBlocks> {
        let block_rows = weight.parts[0].shape[0];
        let mut writer =
            TensorWriter::in_blocks_of(self.gpu, label, Element::F32, &[values.len()], block_rows)?;
        writer.rows(values)?;
        writer.finish()
    }

    /// The encoding of weights in the chosen format.
    fn element(&self) -> Element {
        match self.format {
            WeightFormat::F32 => Element::F32,
            WeightFormat::F16 => Element::F16,
            WeightFormat::Int8 => Element::Int8,
        }
    }

    /// Writes weight `name` of `shape` into `writer` (of the chosen format); int8 that the
    /// checkpoint stores is kept as stored.
    async fn write_weight(
        &self,
        writer: &mut TensorWriter<'_>,
        name: &str,
        shape: &[usize],
    ) -> Result<()> {
        let stored_int8 = match self.element() {
            Element::Int8 => self.ckpt.quantized(name, shape)?,
            _ => None,
        };
        match stored_int8 {
            Some((q, scale)) => writer.quantized_rows(&q, &vec![scale; shape[0]]),
            None => self.write(writer, name, shape).await,
        }
    }

    /// Weight matrices [rows_i, cols] (full tensor names) stacked into one, in the chosen
    /// format.
    async fn matrix(&self, parts: &[(String, usize)], cols: usize) -> Result<RowBlocks> {
        let rows: usize = parts.iter().map(|(_, r)| r).sum();
        let label = parts.first().map_or("weights", |(name, _)| name.as_str());
        let mut writer = TensorWriter::new(self.gpu, label, self.element(), &[rows, cols])?;
        for (name, part_rows) in parts {
            self.write_weight(&mut writer, name, &[*part_rows, cols])
                .await?;
        }
        writer.finish()
    }

    /// A token embedding [rows, d_model] in the chosen format (it may be the LM head too),
    /// with a zero row after the vocabulary where the decoder starts from one.
    async fn embedding(&self, name: &str, rows: usize, zero_row: bool) -> Result<RowBlocks> {
        let d = self.spec.d_model;
        let shape = [rows + usize::from(zero_row), d];
        let mut writer = TensorWriter::new(self.gpu, name, self.element(), &shape)?;
        self.write_weight(&mut writer, name, &[rows, d]).await?;
        if zero_row {
            writer.rows(&vec![0.0; d])?;
        }
        writer.finish()
    }

    /// Several [rows_i, cols] weights (and their biases) stacked into one Linear.
    async fn stacked(&self, parts: &[(String, usize)], cols: usize) -> Result<Linear> {
        let weights: Vec<(String, usize)> = parts
            .iter()
            .map(|(name, rows)| (format!("{name}.weight"), *rows))
            .collect();
        let weight = self.matrix(&weights, cols).await?;
        let bias = if self.spec.biases {
            let mut values = Vec::new();
            for (name, rows) in parts {
                let bias = format!("{name}.bias");
                values.extend(self.ckpt.tensor_shaped(&bias, &[*rows]).await?);
            }
            Some(self.bias(&parts[0].0, &values, &weight)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// An SSRU cell's candidate and forget projections, stacked; only the forget gate has
    /// a bias.
    async fn ssru_gates(&self, names: &SsruNames, i: usize) -> Result<Linear> {
        let d = self.spec.d_model;
        let prefix = names::layer(names.prefix, i);
        let weight = self
            .matrix(
                &[
                    (format!("{prefix}..weight"), d),
                    (format!("{prefix}.f.weight"), d),
                ],
                d,
            )
            .await?;
        let mut bias = vec![0.0; d];
        bias.extend(
            self.ckpt
                .tensor_shaped(&format!("{prefix}.f.bias"), &[d])
                .await?,
        );
        Ok(Linear {
            bias: Some(self.bias(&prefix, &bias, &weight)?),
            weight,
        })
    }

    async fn linear(&self, name: String, rows: usize, cols: usize) -> Result<Linear> {
        self.stacked(&[(name, rows)], cols).await
    }

    async fn norm(&self, name: &str) -> Result<Norm> {
        let d = [self.spec.d_model];
        let weight = self
            .ckpt
            .tensor_shaped(&format!("{name}.weight"), &d)
            .await?;
        let bias = match self.spec.norm {
            NormKind::LayerNorm => {
                Some(self.ckpt.tensor_shaped(&format!("{name}.bias"), &d).await?)
            }
            NormKind::RmsNorm => None,
        };
        let (kind, eps) = (self.spec.norm, self.spec.norm_eps);
        Norm::upload(self.gpu, kind, &weight, bias.as_deref(), eps)
    }

    fn attention_part(names: &AttentionNames, i: usize, proj: &str) -> String {
        format!("{}.{proj}", names::layer(names.prefix, i))
    }

    async fn qkv(&self, names: &AttentionNames, i: usize, stack: &StackSpec) -> Result<Linear> {
        let inner = stack.inner_dim();
        let parts: Vec<(String, usize)> = [names.q, names.k, names.v]
            .iter()
            .map(|p| (Self::attention_part(names, i, p), inner))
            .collect();
        self.stacked(&parts, self.spec.d_model).await
    }

    async fn ffn_in(&self, names: &StackNames, i: usize, stack: &StackSpec) -> Result<Linear> {
        let ff = &names.feed_forward;
        match (self.spec.gated_ffn, ff.gated) {
            (true, Some((gate, linear))) => {
                let parts = [
                    (names::layer(gate, i), stack.ffn_dim),
                    (names::layer(linear, i), stack.ffn_dim),
                ];
                self.stacked(&parts, self.spec.d_model).await
            }
            (true, None) => Err(Error::invalid(
                "the description asks for a gated feed-forward, which this family's checkpoints do not have",
            )),
            (false, _) => {
                self.linear(names::layer(ff.input, i), stack.ffn_dim, self.spec.d_model)
                    .await
            }
        }
    }

    /// A layer's feed-forward sublayer: its norm, input and output projections.
    async fn feed_forward(
        &self,
        names: &StackNames,
        i: usize,
        stack: &StackSpec,
    ) -> Result<(Norm, Linear, Linear)> {
        let norm = self.norm(&names::layer(names.feed_forward_norm, i)).await?;
        let input = self.ffn_in(names, i, stack).await?;
        let output = self.linear(
            names::layer(names.feed_forward.output, i),
            self.spec.d_model,
            stack.ffn_dim,
        );
        Ok((norm, input, output.await?))
    }

    async fn encoder_layer(&self, names: &StackNames, i: usize) -> Result<EncoderLayer> {
        let stack = &self.spec.encoder;
        let d = self.spec.d_model;
        let attn = &names.self_attention;
        let (ffn_norm, ffn_in, ffn_out) = self.feed_forward(names, i, stack).await?;
        Ok(EncoderLayer {
            self_norm: self
                .norm(&names::layer(names.self_attention_norm, i))
                .await?,
            qkv: self.qkv(attn, i, stack).await?,
            self_out: self
                .linear(Self::attention_part(attn, i, attn.o), d, stack.inner_dim())
                .await?,
            ffn_norm,
            ffn_in,
            ffn_out,
        })
    }

    async fn decoder_layer(&self, family: &FamilyNames, i: usize) -> Result<DecoderLayer> {
        let names = &family.decoder;
        let stack = &self.spec.decoder;
        let d = self.spec.d_model;
        let attn = &names.self_attention;
        let cross = &family.cross_attention;
        let mixer = match (self.spec.decoder_cell, &family.ssru) {
            (DecoderCell::SelfAttention, _) => DecoderMixer::SelfAttention {
                qkv: self.qkv(attn, i, stack).await?,
                out: self
                    .linear(Self::attention_part(attn, i, attn.o), d, stack.inner_dim())
                    .await?,
            },
            (DecoderCell::Ssru, Some(ssru)) => DecoderMixer::Ssru {
                gates: self.ssru_gates(ssru, i).await?,
            },
            (DecoderCell::Ssru, None) => {
                return Err(Error::invalid(
                    "this checkpoint's family has no SSRU decoder",
                ));
            }
        };
        let (ffn_norm, ffn_in, ffn_out) = self.feed_forward(names, i, stack).await?;
        Ok(DecoderLayer {
            self_norm: self
                .norm(&names::layer(names.self_attention_norm, i))
                .await?,
            mixer,
            cross_norm: self
                .norm(&names::layer(family.cross_attention_norm, i))
                .await?,
            cross_q: self
                .linear(
                    Self::attention_part(cross, i, cross.q),
                    stack.inner_dim(),
                    d,
                )
                .await?,
            cross_out: self
                .linear(
                    Self::attention_part(cross, i, cross.o),
                    d,
                    stack.inner_dim(),
                )
                .await?,
            ffn_norm,
            ffn_in,
            ffn_out,
        })
    }

    async fn cross_kv(&self, cross: &AttentionNames) -> Result<Linear> {
        let inner = self.spec.decoder.inner_dim();
        let parts: Vec<(String, usize)> = (0..self.spec.decoder.layers)
            .flat_map(|i| {
                [
                    (Self::attention_part(cross, i, cross.k), inner),
                    (Self::attention_part(cross, i, cross.v), inner),
                ]
            })
            .collect();
        self.stacked(&parts, self.spec.d_model).await
    }

    /// The absolute position table of a stack: stored, or computed for sinusoids.
    async fn positions(&self, stored: Option<&str>) -> Result<Option<RowBlocks>> {
        let d = self.spec.d_model;
        match self.spec.positions {
            Positions::RelativeBuckets { .. } => Ok(None),
            Positions::Learned { offset, limit } => {
                let name = stored.ok_or_else(|| {
                    Error::invalid(
                        "the description asks for learned positions, which this family's checkpoints do not store",
                    )
                })?;
                Ok(Some(self.table(name, &[limit + offset, d]).await?))
            }
            Positions::Sinusoidal {
                offset,
                limit,
                layout,
            } => {
                let shape = [limit + offset, d];
                match stored.filter(|name| self.ckpt.contains(name)) {
                    Some(name) => Ok(Some(self.table(name, &shape).await?)),
                    None => {
                        let mut writer =
                            TensorWriter::new(self.gpu, "sinusoids", Element::F32, &shape)?;
                        writer.rows(&sinusoids::table(layout, shape[0], d))?;
                        Ok(Some(writer.finish()?))
                    }
                }
            }
        }
    }

    async fn stack_ends(
        &self,
        names: &StackNames,
        embedding: RowBlocks,
        heads: usize,
    ) -> Result<StackEnds> {
        let relative_bias = match (self.spec.positions, names.relative_bias) {
            (Positions::RelativeBuckets { num_buckets, .. }, Some(name)) => {
                Some(self.tensor(name, &[num_buckets, heads]).await?)
            }
            _ => None,
        };
        let embedding_norm = match (self.spec.embedding_norm, names.embedding_norm) {
            (true, Some(name)) => Some(self.norm(name).await?),
            _ => None,
        };
        Ok(StackEnds {
            embedding,
            positions: self.positions(names.positions).await?,
            embedding_norm,
            final_norm: if self.spec.final_norm {
                Some(self.norm(names.final_norm).await?)
            } else {
                None
            },
            relative_bias,
        })
    }

    async fn lm_head(&self, names: &FamilyNames, decoder_embedding: &RowBlocks) -> Result<Linear> {
        let v = self.spec.vocab_size;
        let weight = if self.spec.tied_lm_head {
            decoder_embedding.clone()
        } else {
            self.matrix(&[(names.lm_head.to_string(), v)], self.spec.d_model)
                .await?
        };
        // Stored as [1, vocab]; checkpoints that never trained it may leave it out (zeros).
        let name = names.logits_bias;
        let bias = match self.spec.logits_bias && self.ckpt.contains(name) {
            true => {
                let values = self.ckpt.tensor_shaped(name, &[1, v]).await?;
                Some(self.bias(name, &values, &weight)?)
            }
            false => None,
        };
        Ok(Linear { weight, bias })
    }
}

impl Weights {
    pub async fn load(
        gpu: &Gpu,
        ckpt: &impl TensorSource,
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
        // The decoder's start "token" may be a zero row after the vocabulary.
        let embedding = loader
            .embedding(shared_name, encoder_vocab, spec.start_from_zero_embedding)
            .await?;
        let decoder_embedding = if spec.separate_decoder_embedding {
            loader
                .embedding(names.decoder_embedding, spec.vocab_size, false)
                .await?
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
        let lm_head = loader.lm_head(names, &decoder_embedding).await?;
        let mut encoder = Vec::with_capacity(spec.encoder.layers);
        for i in 0..spec.encoder.layers {
            encoder.push(loader.encoder_layer(&names.encoder, i).await?);
        }
        let mut decoder = Vec::with_capacity(spec.decoder.layers);
        for i in 0..spec.decoder.layers {
            decoder.push(loader.decoder_layer(names, i).await?);
        }
        Ok(Weights {
            encoder,
            decoder,
            cross_kv: loader.cross_kv(&names.cross_attention).await?,
            encoder_ends: loader
                .stack_ends(&names.encoder, embedding, spec.encoder.heads)
                .await?,
            decoder_ends: loader
                .stack_ends(&names.decoder, decoder_embedding, spec.decoder.heads)
                .await?,
            lm_head,
        })
    }
}
