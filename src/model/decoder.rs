//! The decoder, recorded once for a fixed number of new rows per step and replayed at every
//! position: the self-attention cache is preallocated to the maximum length and written in
//! place, and positions come from the step uniform, so the loop allocates nothing.

use std::sync::Arc;

use super::Model;
use super::encoder::Encoded;
use super::graph::{AttentionSpec, Graph, Scratch};
use super::relative_position::bucket_table;
use super::spec::Positions;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Plan, Recorder, Tensor, Workspace};
use crate::ops::{self, Epilogue, PositionBias};

pub struct Decoder {
    gpu: Arc<Gpu>,
    plan: Plan,
    /// u32 [rows]: the tokens fed at this step.
    ids: Tensor,
    /// u32 [rows]: argmax of each row's logits. The same buffer as `ids` when the decoder
    /// feeds itself (greedy generation), so the next input never visits the CPU.
    next_ids: Tensor,
    /// [rows, vocab]
    logits: Tensor,
    staging: wgpu::Buffer,
    rows: usize,
    capacity: usize,
    vocab: usize,
    _workspace: Workspace,
}

impl Model {
    /// The most tokens a decoder cache may hold for this model.
    pub fn max_decoder_positions(&self) -> Option<usize> {
        self.spec.positions.limit()
    }

    /// A decoder over `encoded` that takes `rows` tokens per step and holds up to `capacity`
    /// tokens in its cache. With `feedback`, each step's argmax becomes the next step's input.
    pub fn decoder(
        &self,
        gpu: &Arc<Gpu>,
        encoded: &Encoded,
        capacity: usize,
        rows: usize,
        feedback: bool,
    ) -> Result<Decoder> {
        let spec = &self.spec;
        if rows == 0 || rows > capacity {
            return Err(Error::invalid(format!(
                "decoder: {rows} rows per step with capacity {capacity}"
            )));
        }
        if feedback && rows != 1 {
            return Err(Error::invalid(
                "a self-feeding decoder takes one token per step",
            ));
        }
        if let Some(limit) = self.max_decoder_positions()
            && capacity > limit
        {
            return Err(Error::invalid(format!(
                "{capacity} decoder positions requested; this model places at most {limit} (max_position_embeddings)"
            )));
        }
        let stack = spec.decoder;
        let inner = stack.inner_dim();
        let mut ws = Workspace::new(gpu.clone());
        let ids = ws.tensor(&[rows])?;
        let next_ids = if feedback {
            ids.clone()
        } else {
            ws.tensor(&[rows])?
        };
        let logits = ws.tensor(&[rows, spec.vocab_size])?;
        let hidden = ws.tensor(&[rows, spec.d_model])?;
        let scratch = Scratch::new(&mut ws, spec, &stack, hidden)?;
        let caches = (0..stack.layers)
            .map(|_| ws.tensor(&[capacity, 2 * inner]))
            .collect::<Result<Vec<_>>>()?;
        let ends = &self.weights.decoder_ends;
        let buckets = match spec.positions {
            Positions::RelativeBuckets {
                num_buckets,
                max_distance,
            } => Some(ws.upload_u32(&bucket_table(capacity, false, num_buckets, max_distance))?),
            _ => None,
        };
        let position_bias =
            buckets
                .as_ref()
                .zip(ends.relative_bias.as_ref())
                .map(|(buckets, table)| PositionBias {
                    buckets,
                    table,
                    center: capacity - 1,
                });

        let mut rec = Recorder::new(gpu);
        let mut g = Graph {
            rec: &mut rec,
            spec,
        };
        g.embed(ends, &ids, true, &scratch)?;
        let cross = encoded.cross_kv.matrix();
        for (l, layer) in self.weights.decoder.iter().enumerate() {
            let cache = &caches[l];
            g.sublayer(&layer.self_norm, &scratch, |g, x| {
                g.project_qkv(&layer.qkv, x, &scratch)?;
                let qkv = scratch.qkv.matrix();
                ops::kv_cache::append(g.rec, qkv.columns(inner, 2 * inner), cache)?;
                let attention = AttentionSpec {
                    q: qkv.columns(0, inner),
                    k: cache.matrix().columns(0, inner),
                    v: cache.matrix().columns(inner, inner),
                    heads: stack.heads,
                    head_dim: stack.head_dim,
                    causal: true,
                    position_bias,
                    from_step: true,
                };
                g.attend(attention, &layer.self_out, &scratch)
            })?;
            g.sublayer(&layer.cross_norm, &scratch, |g, x| {
                g.linear(
                    &layer.cross_q,
                    x.matrix(),
                    scratch.query.matrix(),
                    Epilogue::default(),
                )?;
                let attention = AttentionSpec {
                    q: scratch.query.matrix(),
                    k: cross.columns(2 * l * inner, inner),
                    v: cross.columns((2 * l + 1) * inner, inner),
                    heads: stack.heads,
                    head_dim: stack.head_dim,
                    causal: false,
                    position_bias: None,
                    from_step: false,
                };
                g.attend(attention, &layer.cross_out, &scratch)
            })?;
            g.sublayer(&layer.ffn_norm, &scratch, |g, x| {
                g.feed_forward(&layer.ffn_in, &layer.ffn_out, x, &scratch)
            })?;
        }
        g.finish(ends, &scratch)?;
        let head = Epilogue {
            alpha: spec.lm_head_scale,
            ..Epilogue::default()
        };
        g.linear(
            &self.weights.lm_head,
            scratch.hidden.matrix(),
            logits.matrix(),
            head,
        )?;
        ops::argmax(g.rec, &logits, &next_ids)?;
        let plan = rec.finish()?;
        Ok(Decoder {
            gpu: gpu.clone(),
            plan,
            ids,
            next_ids,
            logits,
            staging: gpu.staging_buffer((rows * 4) as u64),
            rows,
            capacity,
            vocab: spec.vocab_size,
            _workspace: ws,
        })
    }
}

impl Decoder {
    /// Sets the tokens for the next step (not needed when the decoder feeds itself).
    pub fn set_ids(&self, ids: &[u32]) -> Result<()> {
        if ids.len() != self.rows {
            return Err(Error::invalid(format!(
                "decoder takes {} ids per step, got {}",
                self.rows,
                ids.len()
            )));
        }
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= self.vocab) {
            return Err(Error::invalid(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.vocab
            )));
        }
        self.gpu
            .queue
            .write_buffer(&self.ids.buffer, 0, bytemuck::cast_slice(ids));
        Ok(())
    }

    fn check_position(&self, pos: usize) -> Result<()> {
        if pos + self.rows > self.capacity {
            return Err(Error::invalid(format!(
                "decoder position {pos} + {} rows exceeds the cache of {}",
                self.rows, self.capacity
            )));
        }
        Ok(())
    }

    /// Runs one step with `pos` tokens already cached, and reads back only the argmax ids.
    pub async fn step(&self, pos: usize) -> Result<Vec<u32>> {
        self.check_position(pos)?;
        self.plan.set_step(&self.gpu, pos as u32);
        let mut encoder = self.gpu.encoder();
        self.plan.encode(&mut encoder);
        let bytes = self
            .gpu
            .submit_and_read(
                encoder,
                &self.next_ids.buffer,
                &self.staging,
                (self.rows * 4) as u64,
            )
            .await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Runs one step and returns the full logits [rows, vocab] (tests and diagnostics).
    pub async fn step_logits(&self, pos: usize) -> Result<Vec<f32>> {
        self.check_position(pos)?;
        self.plan.set_step(&self.gpu, pos as u32);
        self.plan.submit(&self.gpu);
        self.logits.to_f32(&self.gpu).await
    }
}
