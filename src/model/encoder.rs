//! The encoder: run once per input, then its output is projected to the cross-attention
//! keys and values of every decoder layer, which all decode steps reuse.

use std::sync::Arc;

use super::Model;
use super::graph::{AttentionSpec, Graph, Scratch};
use super::relative_position::bucket_table;
use super::spec::Positions;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder, Tensor, Workspace};
use crate::ops::{self, Epilogue, PositionBias};

/// The encoder's results for one input, kept on the GPU.
pub struct Encoded {
    /// Final encoder states [source_len, d_model].
    pub hidden: Tensor,
    /// [source_len, decoder_layers * 2 * inner]: per layer, K then V.
    pub cross_kv: Tensor,
    pub source_len: usize,
    _workspace: Workspace,
}

impl Model {
    /// Runs the encoder on `input_ids` (already validated against the vocabulary).
    pub fn encode(&self, gpu: &Arc<Gpu>, input_ids: &[u32]) -> Result<Encoded> {
        let spec = &self.spec;
        let s = input_ids.len();
        if s == 0 {
            return Err(Error::invalid("the encoder input is empty"));
        }
        let mut kept = Workspace::new(gpu.clone());
        let hidden = kept.tensor(&[s, spec.d_model])?;
        let cross_kv = kept.tensor(&[s, self.weights.cross_kv.weight.shape[0]])?;

        let mut ws = Workspace::new(gpu.clone());
        let ids = ws.tensor(&[s])?;
        gpu.queue
            .write_buffer(&ids.buffer, 0, bytemuck::cast_slice(input_ids));
        let scratch = Scratch::new(&mut ws, spec, &spec.encoder, hidden.clone())?;
        let buckets = match spec.positions {
            Positions::RelativeBuckets {
                num_buckets,
                max_distance,
            } => {
                let table = bucket_table(s, true, num_buckets, max_distance);
                let t = ws.tensor(&[table.len()])?;
                gpu.queue
                    .write_buffer(&t.buffer, 0, bytemuck::cast_slice(&table));
                Some(t)
            }
        };

        let mut rec = Recorder::new(gpu);
        let mut g = Graph {
            rec: &mut rec,
            spec,
        };
        ops::embedding(
            g.rec,
            &ids,
            &self.weights.embedding,
            &scratch.hidden,
            spec.embed_scale,
        )?;
        let position_bias = match (&buckets, &self.weights.encoder_relative_bias) {
            (Some(buckets), Some(table)) => Some(PositionBias {
                buckets,
                table,
                center: s - 1,
            }),
            _ => None,
        };
        let stack = spec.encoder;
        let inner = stack.inner_dim();
        for layer in &self.weights.encoder {
            let x = g.sublayer_input(&layer.self_norm, &scratch)?;
            g.linear(
                &layer.qkv,
                x.matrix(),
                scratch.qkv.matrix(),
                Epilogue::default(),
            )?;
            let qkv = scratch.qkv.matrix();
            let attention = AttentionSpec {
                q: qkv.columns(0, inner),
                k: qkv.columns(inner, inner),
                v: qkv.columns(2 * inner, inner),
                heads: stack.heads,
                head_dim: stack.head_dim,
                causal: false,
                position_bias,
                from_step: false,
            };
            g.attend(attention, &layer.self_out, &scratch)?;
            let x = g.sublayer_input(&layer.ffn_norm, &scratch)?;
            g.feed_forward(&layer.ffn_in, &layer.ffn_out, x, &scratch)?;
        }
        if let Some(norm) = &self.weights.encoder_final_norm {
            g.norm(norm, &hidden, &hidden)?;
        }
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
            source_len: s,
            _workspace: kept,
        })
    }
}
