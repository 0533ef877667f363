//! The encoder: run once per input (or padded batch of inputs), then its output is projected
//! to the cross-attention keys and values of every decoder layer, which all decode steps
//! (and all beams) reuse.

use std::sync::Arc;

use super::graph::{AttentionSpec, Graph, Scratch};
use super::loaded::Model;
use super::relative_position::bucket_table;
use super::spec::Positions;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder, Tensor, Workspace};
use crate::ops::{Epilogue, PositionBias};

/// The encoder's results for a batch of inputs, kept on the GPU.
pub struct Encoded {
    /// Final encoder states [batch * source_len, encoder width].
    pub hidden: Tensor,
    /// [batch * source_len, decoder_layers * 2 * kv_dim]: per layer, K then V.
    pub cross_kv: Tensor,
    /// u32 [batch, source_len]: 0 marks padding. None when no input is padded.
    pub mask: Option<Tensor>,
    pub batch: usize,
    pub source_len: usize,
    /// Each input's ids (unpadded): a shortlist picks the output vocabulary from them.
    pub source_ids: Vec<Vec<u32>>,
    _workspace: Workspace,
}

impl Model {
    /// Runs the encoder on one input (ids already validated against the vocabulary).
    pub fn encode(&self, gpu: &Arc<Gpu>, input_ids: &[u32]) -> Result<Encoded> {
        self.encode_batch(gpu, &[input_ids.to_vec()])
    }

    /// Runs the encoder on several inputs at once, right-padded with the pad token to the
    /// longest and masked, as transformers pads a batch.
    pub fn encode_batch(&self, gpu: &Arc<Gpu>, inputs: &[Vec<u32>]) -> Result<Encoded> {
        let spec = &self.spec;
        let batch = inputs.len();
        let s = inputs.iter().map(Vec::len).max().unwrap_or(0);
        if batch == 0 || inputs.iter().any(Vec::is_empty) {
            return Err(Error::invalid("an encoder input is empty"));
        }
        if let Some(limit) = spec.positions.limit()
            && s > limit
        {
            return Err(Error::invalid(format!(
                "the input has {s} tokens; this model places at most {limit} (max_position_embeddings)"
            )));
        }
        let mut ids = Vec::with_capacity(batch * s);
        let mut mask = Vec::with_capacity(batch * s);
        for input in inputs {
            ids.extend(
                input
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(spec.pad_token_id))
                    .take(s),
            );
            mask.extend((0..s).map(|i| u32::from(i < input.len())));
        }
        let padded = mask.contains(&0);

        let mut kept = Workspace::new(gpu.clone());
        let hidden = kept.tensor(&[batch * s, spec.encoder.width])?;
        let cross_kv = kept.tensor(&[batch * s, self.weights.cross_kv.weight.shape[0]])?;
        let mask = if padded {
            Some(kept.upload_u32(&mask)?)
        } else {
            None
        };

        let mut ws = Workspace::new(gpu.clone());
        let ids = ws.upload_u32(&ids)?;
        let scratch = Scratch::new(&mut ws, spec, &spec.encoder, hidden.clone(), s)?;
        let ends = &self.weights.encoder_ends;
        let buckets = match spec.positions {
            Positions::RelativeBuckets {
                num_buckets,
                max_distance,
            } => Some(ws.upload_u32(&bucket_table(s, true, num_buckets, max_distance))?),
            _ => None,
        };
        let position_bias =
            buckets
                .as_ref()
                .zip(ends.relative_bias.as_ref())
                .map(|(buckets, table)| PositionBias {
                    buckets,
                    table,
                    center: s - 1,
                });

        let rotary = self.rotary_table(&mut ws, &spec.encoder, s)?;

        let mut rec = Recorder::new(gpu);
        let mut g = Graph {
            rec: &mut rec,
            spec,
        };
        let stack = &spec.encoder;
        let mut stream = g.embed(stack, ends, &ids, s, false, &scratch)?;
        let (inner, kv) = (stack.inner_dim(), stack.kv_dim());
        for (l, layer) in self.weights.encoder.iter().enumerate() {
            stream = g.sublayer(&layer.self_norm, stream, &scratch, |g, x, add| {
                g.project_qkv(&layer.qkv, x, &scratch, None)?;
                if let Some(table) = &rotary {
                    g.rotate(stack, table, s, false, &scratch, None)?;
                }
                let qkv = scratch.qkv.matrix();
                let attention = AttentionSpec {
                    q: qkv.columns(0, inner).into(),
                    k: qkv.columns(inner, kv),
                    v: qkv.columns(inner + kv, kv),
                    heads: stack.heads,
                    kv_heads: stack.kv_heads,
                    head_dim: stack.head_dim,
                    causal: false,
                    window: stack.window(l),
                    position_bias,
                    from_step: false,
                    batch,
                    kv_group: 1,
                    key_mask: mask.as_ref(),
                    row_table: None,
                    pages: None,
                };
                g.attend(attention, &layer.self_out, &scratch, add)
            })?;
            stream = g.sublayer(&layer.ffn_norm, stream, &scratch, |g, x, add| {
                g.feed_forward(&layer.ffn_in, &layer.ffn_out, x, &scratch, add)
            })?;
        }
        g.finish(ends, stream, &hidden)?;
        g.linear(
            &self.weights.cross_kv,
            hidden.matrix(),
            cross_kv.matrix(),
            Epilogue::default(),
        )?;
        rec.finish()?.submit(gpu);
        Ok(Encoded {
            hidden,
            cross_kv,
            mask,
            batch,
            source_len: s,
            source_ids: inputs.to_vec(),
            _workspace: kept,
        })
    }
}

impl Model {
    /// Room for the encoder results of `slots` inputs of up to `source_len` tokens each, all
    /// masked out until [`Encoded::place`] puts an input's results in a slot: what a
    /// continuously batched decoder attends to while its rows change inputs.
    pub fn encoder_slots(
        &self,
        gpu: &Arc<Gpu>,
        slots: usize,
        source_len: usize,
    ) -> Result<Encoded> {
        if slots == 0 || source_len == 0 {
            return Err(Error::invalid(format!(
                "{slots} encoder slots of {source_len} tokens"
            )));
        }
        let mut kept = Workspace::new(gpu.clone());
        let rows = slots * source_len;
        let hidden = kept.tensor(&[rows, self.spec.encoder.width])?;
        let cross_kv = kept.tensor(&[rows, self.weights.cross_kv.weight.shape[0]])?;
        let mask = kept.upload_u32(&vec![0; rows])?;
        // Masked keys weigh 0, but 0 x NaN is NaN: a recycled buffer's leftovers (a -inf
        // mask, a poisoned row) must not stand beyond an input's keys.
        let mut encoder = gpu.encoder();
        encoder.clear_buffer(&hidden.buffer, 0, None);
        encoder.clear_buffer(&cross_kv.buffer, 0, None);
        gpu.submit(encoder);
        Ok(Encoded {
            hidden,
            cross_kv,
            mask: Some(mask),
            batch: slots,
            source_len,
            source_ids: vec![Vec::new(); slots],
            _workspace: kept,
        })
    }
}

impl Encoded {
    /// Puts input `input` of `from` (encoded on the same model) in slot `slot`: its states,
    /// cross-attention keys and values, and a mask that covers its tokens only.
    pub fn place(&mut self, gpu: &Gpu, slot: usize, from: &Encoded, input: usize) -> Result<()> {
        let (Some(mask), Some(ids)) = (&self.mask, from.source_ids.get(input)) else {
            return Err(Error::invalid("only encoder slots take placed inputs"));
        };
        let len = ids.len();
        if slot >= self.batch
            || len > self.source_len
            || from.hidden.shape[1] != self.hidden.shape[1]
            || from.cross_kv.shape[1] != self.cross_kv.shape[1]
        {
            return Err(Error::invalid(format!(
                "an input of {len} tokens does not fit slot {slot} of {} slots of {} tokens",
                self.batch, self.source_len
            )));
        }
        let mut encoder = gpu.encoder();
        for (to, src) in [
            (&self.hidden, &from.hidden),
            (&self.cross_kv, &from.cross_kv),
        ] {
            let row_bytes = (to.shape[1] * 4) as u64;
            encoder.copy_buffer_to_buffer(
                &src.buffer,
                (input * from.source_len) as u64 * row_bytes,
                &to.buffer,
                (slot * self.source_len) as u64 * row_bytes,
                len as u64 * row_bytes,
            );
        }
        gpu.submit(encoder);
        let row: Vec<u32> = (0..self.source_len).map(|t| u32::from(t < len)).collect();
        let at = (slot * self.source_len * 4) as u64;
        gpu.queue
            .write_buffer(&mask.buffer, at, bytemuck::cast_slice(&row));
        self.source_ids[slot] = ids.clone();
        Ok(())
    }
}
