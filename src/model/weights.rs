//! The model's weights on the GPU, laid out for the graph: projections that read the same
//! input are fused into one matrix (Q, K and V; the gate and linear halves of a gated
//! feed-forward; the cross-attention K and V of every decoder layer).

use super::names::{self, AttentionNames, FamilyNames, SsruNames, StackNames};
use super::sinusoids;
use super::spec::{DecoderCell, ModelSpec, NormKind, Positions, StackSpec};
pub use super::weight_format::WeightFormat;
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

/// The norms around a sublayer: of its input (pre-norm) or of the stream after the residual
/// add (post-norm), and, in Gemma's models, of its output before the add.
pub struct SublayerNorms {
    pub norm: Norm,
    pub output: Option<Norm>,
}

pub struct EncoderLayer {
    pub self_norm: SublayerNorms,
    /// [inner + 2 * kv_dim, width]: Q, K, V stacked.
    pub qkv: Linear,
    pub self_out: Linear,
    pub ffn_norm: SublayerNorms,
    /// [ffn_dim, d_model], or [2 * ffn_dim, d_model] (gate then linear) when gated.
    pub ffn_in: Linear,
    pub ffn_out: Linear,
}

/// What mixes a decoder layer's own positions (see `DecoderCell`).
pub enum DecoderMixer {
    SelfAttention {
        /// [inner + 2 * kv_dim, width]: Q, K, V stacked.
        qkv: Linear,
        out: Linear,
    },
    /// [2 * width, width]: the candidate projection W, then the forget gate Wf (whose
    /// bias is the only one: the bias is [0; bf]).
    Ssru { gates: Linear },
}

pub struct DecoderLayer {
    /// The norms of the mixer's sublayer.
    pub self_norm: SublayerNorms,
    pub mixer: DecoderMixer,
    pub cross_norm: SublayerNorms,
    pub cross_q: Linear,
    pub cross_out: Linear,
    pub ffn_norm: SublayerNorms,
    pub ffn_in: Linear,
    pub ffn_out: Linear,
}

/// What one stack adds to its token embeddings, and its norm at the end.
pub struct StackEnds {
    /// [vocab, width]
    pub embedding: RowBlocks,
    /// Absolute positions [limit + offset, width] (BART family).
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
    /// [decoder_layers * 2 * kv_dim, encoder width]: K then V of each decoder layer's
    /// cross-attention, so one matmul projects the encoder output for every layer.
    pub cross_kv: Linear,
    /// [vocab, decoder width] with the logits bias; the decoder embedding itself when tied.
    pub lm_head: Linear,
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

    /// A token embedding [rows, d] in the chosen format (it may be the LM head too), with a
    /// zero row after the vocabulary where the decoder starts from one.
    async fn embedding(
        &self,
        name: &str,
        rows: usize,
        d: usize,
        zero_row: bool,
    ) -> Result<RowBlocks> {
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
        let d = self.spec.decoder.width;
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

    /// The norm `name` over rows of `d` values (with the family's weight offset added).
    async fn norm(&self, name: &str, d: usize) -> Result<Norm> {
        let d = [d];
        let offset = self.spec.norm_weight_offset;
        let weight: Vec<f32> = (self.ckpt)
            .tensor_shaped(&format!("{name}.weight"), &d)
            .await?
            .into_iter()
            .map(|w| offset + w)
            .collect();
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
        let (inner, kv) = (stack.inner_dim(), stack.kv_dim());
        let parts: Vec<(String, usize)> = [(names.q, inner), (names.k, kv), (names.v, kv)]
            .iter()
            .map(|(p, rows)| (Self::attention_part(names, i, p), *rows))
            .collect();
        self.stacked(&parts, stack.width).await
    }

    /// A sublayer's norms: `input` (of its input, or of the stream after a post-norm add)
    /// and, where the family has one, `output`'s.
    async fn sublayer_norms(
        &self,
        input: &str,
        output: Option<&str>,
        i: usize,
        d: usize,
    ) -> Result<SublayerNorms> {
        let output = match (self.spec.post_sublayer_norm, output) {
            (true, Some(name)) => Some(self.norm(&names::layer(name, i), d).await?),
            (true, None) => {
                return Err(Error::invalid(
                    "the description asks for norms after each sublayer, which this family's checkpoints do not have",
                ));
            }
            (false, _) => None,
        };
        Ok(SublayerNorms {
            norm: self.norm(&names::layer(input, i), d).await?,
            output,
        })
    }

    async fn ffn_in(&self, names: &StackNames, i: usize, stack: &StackSpec) -> Result<Linear> {
        let ff = &names.feed_forward;
        match (self.spec.gated_ffn, ff.gated) {
            (true, Some((gate, linear))) => {
                let parts = [
                    (names::layer(gate, i), stack.ffn_dim),
                    (names::layer(linear, i), stack.ffn_dim),
                ];
                self.stacked(&parts, stack.width).await
            }
            (true, None) => Err(Error::invalid(
                "the description asks for a gated feed-forward, which this family's checkpoints do not have",
            )),
            (false, _) => {
                self.linear(names::layer(ff.input, i), stack.ffn_dim, stack.width)
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
    ) -> Result<(SublayerNorms, Linear, Linear)> {
        let (input, output) = (names.feed_forward_norm, names.post_feed_forward_norm);
        let norms = self.sublayer_norms(input, output, i, stack.width).await?;
        let input = self.ffn_in(names, i, stack).await?;
        let output = self.linear(
            names::layer(names.feed_forward.output, i),
            stack.width,
            stack.ffn_dim,
        );
        Ok((norms, input, output.await?))
    }

    async fn encoder_layer(&self, names: &StackNames, i: usize) -> Result<EncoderLayer> {
        let stack = &self.spec.encoder;
        let d = stack.width;
        let attn = &names.self_attention;
        let (ffn_norm, ffn_in, ffn_out) = self.feed_forward(names, i, stack).await?;
        let (input, output) = (names.self_attention_norm, names.post_self_attention_norm);
        Ok(EncoderLayer {
            self_norm: self.sublayer_norms(input, output, i, d).await?,
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
        let d = stack.width;
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
        let (input, output) = (names.self_attention_norm, names.post_self_attention_norm);
        let self_norm = self.sublayer_norms(input, output, i, d).await?;
        let (input, output) = (
            family.cross_attention_norm,
            family.post_cross_attention_norm,
        );
        Ok(DecoderLayer {
            self_norm,
            mixer,
            cross_norm: self.sublayer_norms(input, output, i, d).await?,
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

    /// The keys and values of every decoder layer's cross-attention, which read the encoder's
    /// output (of the encoder's width).
    async fn cross_kv(&self, cross: &AttentionNames) -> Result<Linear> {
        let kv = self.spec.decoder.kv_dim();
        let parts: Vec<(String, usize)> = (0..self.spec.decoder.layers)
            .flat_map(|i| {
                [
                    (Self::attention_part(cross, i, cross.k), kv),
                    (Self::attention_part(cross, i, cross.v), kv),
                ]
            })
            .collect();
        self.stacked(&parts, self.spec.encoder.width).await
    }

    /// The absolute position table of a stack of width `d`: stored, or computed for
    /// sinusoids.
    async fn positions(&self, stored: Option<&str>, d: usize) -> Result<Option<RowBlocks>> {
        match self.spec.positions {
            Positions::RelativeBuckets { .. } | Positions::Rotary { .. } => Ok(None),
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
        stack: &StackSpec,
    ) -> Result<StackEnds> {
        let (heads, d) = (stack.heads, stack.width);
        let relative_bias = match (self.spec.positions, names.relative_bias) {
            (Positions::RelativeBuckets { num_buckets, .. }, Some(name)) => {
                Some(self.tensor(name, &[num_buckets, heads]).await?)
            }
            _ => None,
        };
        let embedding_norm = match (self.spec.embedding_norm, names.embedding_norm) {
            (true, Some(name)) => Some(self.norm(name, d).await?),
            _ => None,
        };
        Ok(StackEnds {
            embedding,
            positions: self.positions(names.positions, d).await?,
            embedding_norm,
            final_norm: if self.spec.final_norm {
                Some(self.norm(names.final_norm, d).await?)
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
            self.matrix(&[(names.lm_head.to_string(), v)], self.spec.decoder.width)
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
        let (d, decoder_width) = (spec.encoder.width, spec.decoder.width);
        let shared_name = ckpt
            .first_of(names.embedding)
            .ok_or_else(|| Error::MissingTensor {
                file: ckpt.files(),
                name: names.embedding.join("\" or \""),
            })?;
        let encoder_vocab = ckpt.shape(shared_name)?.first().copied().unwrap_or(0);
        // The decoder's start "token" may be a zero row after the vocabulary.
        let embedding = loader
            .embedding(
                shared_name,
                encoder_vocab,
                d,
                spec.start_from_zero_embedding,
            )
            .await?;
        let decoder_embedding = if spec.separate_decoder_embedding {
            loader
                .embedding(
                    names.decoder_embedding,
                    spec.vocab_size,
                    decoder_width,
                    false,
                )
                .await?
        } else {
            if encoder_vocab != spec.vocab_size || d != decoder_width {
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
                .stack_ends(&names.encoder, embedding, &spec.encoder)
                .await?,
            decoder_ends: loader
                .stack_ends(&names.decoder, decoder_embedding, &spec.decoder)
                .await?,
            lm_head,
        })
    }
}
