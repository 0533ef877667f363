//! The encoder-decoder graph's building blocks, recorded as kernel dispatches from the model
//! description. One code path serves every family; the description decides norm placement,
//! positions, scaling and biases.

use super::spec::{ModelSpec, StackSpec};
use super::weights::{Linear, Norm, StackEnds};
use crate::error::Result;
use crate::gpu::{Recorder, Tensor, View, Workspace};
use crate::ops::{self, Attention, Epilogue, PositionBias, Positions};

pub struct Graph<'a, 'g> {
    pub rec: &'a mut Recorder<'g>,
    pub spec: &'a ModelSpec,
}

/// Work tensors for the rows one stack processes at once.
pub struct Scratch {
    /// The residual stream [rows, d_model].
    pub hidden: Tensor,
    /// Normalised input of a pre-norm sublayer [rows, d_model].
    pub normed: Tensor,
    /// Fused Q, K, V [rows, 3 * inner].
    pub qkv: Tensor,
    /// Attention output [rows, inner].
    pub attended: Tensor,
    /// Cross-attention queries [rows, inner] (decoder).
    pub query: Tensor,
    /// Feed-forward input projection [rows, ffn (x2 when gated)].
    pub ffn: Tensor,
    /// Gated product [rows, ffn] (gated models).
    pub ffn_gated: Tensor,
}

impl Scratch {
    /// Work tensors around `hidden` ([rows, d_model]), which the caller may keep beyond them.
    pub fn new(
        ws: &mut Workspace,
        spec: &ModelSpec,
        stack: &StackSpec,
        hidden: Tensor,
    ) -> Result<Scratch> {
        let (d, inner, ff) = (spec.d_model, stack.inner_dim(), stack.ffn_dim);
        let rows = hidden.shape[0];
        let ffn_width = if spec.gated_ffn { 2 * ff } else { ff };
        Ok(Scratch {
            hidden,
            normed: ws.tensor(&[rows, d])?,
            qkv: ws.tensor(&[rows, 3 * inner])?,
            attended: ws.tensor(&[rows, inner])?,
            query: ws.tensor(&[rows, inner])?,
            ffn: ws.tensor(&[rows, ffn_width])?,
            ffn_gated: ws.tensor(&[rows, if spec.gated_ffn { ff } else { 1 }])?,
        })
    }
}

/// What attends to what in one attention call.
pub struct AttentionSpec<'t> {
    pub q: View<'t>,
    pub k: View<'t>,
    pub v: View<'t>,
    pub heads: usize,
    pub head_dim: usize,
    pub causal: bool,
    pub position_bias: Option<PositionBias<'t>>,
    pub from_step: bool,
    /// Sequences attending at once, and how many of them share one key/value item.
    pub batch: usize,
    pub kv_group: usize,
    pub key_mask: Option<&'t Tensor>,
    pub row_table: Option<&'t Tensor>,
}

const RESIDUAL: Epilogue = Epilogue {
    activation: ops::Activation::Identity,
    alpha: 1.0,
    accumulate: true,
};

impl Graph<'_, '_> {
    pub fn norm(&mut self, norm: &Norm, x: &Tensor, y: &Tensor) -> Result<()> {
        ops::norm(
            self.rec,
            self.spec.norm,
            x,
            y,
            &norm.weight,
            norm.bias.as_ref(),
            self.spec.norm_eps,
        )
    }

    pub fn linear(&mut self, layer: &Linear, x: View, out: View, epilogue: Epilogue) -> Result<()> {
        ops::linear_blocks(
            self.rec,
            x,
            &layer.weight,
            layer.bias.as_ref(),
            out,
            epilogue,
        )
    }

    /// Token embeddings (scaled), absolute positions and the embedding norm into `s.hidden`,
    /// for ids holding `rows_per_sequence` tokens of each sequence.
    pub fn embed(
        &mut self,
        ends: &StackEnds,
        ids: &Tensor,
        rows_per_sequence: usize,
        from_step: bool,
        s: &Scratch,
    ) -> Result<()> {
        let positions = ends.positions.as_ref().map(|table| Positions {
            table,
            offset: self.spec.positions.offset(),
            from_step,
            rows_per_sequence,
        });
        ops::embedding(
            self.rec,
            ids,
            &ends.embedding,
            self.spec.embed_scale,
            positions,
            &s.hidden,
        )?;
        match &ends.embedding_norm {
            Some(norm) => self.norm(norm, &s.hidden, &s.hidden),
            None => Ok(()),
        }
    }

    /// The stack's final norm, in place.
    pub fn finish(&mut self, ends: &StackEnds, s: &Scratch) -> Result<()> {
        match &ends.final_norm {
            Some(norm) => self.norm(norm, &s.hidden, &s.hidden),
            None => Ok(()),
        }
    }

    /// A residual sublayer: `body` reads its input and adds its output to the stream.
    /// Pre-norm feeds it the normalised stream; post-norm feeds it the stream and
    /// normalises after the residual add.
    pub fn sublayer(
        &mut self,
        norm: &Norm,
        s: &Scratch,
        body: impl FnOnce(&mut Self, &Tensor) -> Result<()>,
    ) -> Result<()> {
        if self.spec.pre_norm {
            self.norm(norm, &s.hidden, &s.normed)?;
            body(self, &s.normed)
        } else {
            body(self, &s.hidden)?;
            self.norm(norm, &s.hidden, &s.hidden)
        }
    }

    /// Attention into `s.attended`, then the output projection added to the stream.
    pub fn attend(&mut self, a: AttentionSpec, out_proj: &Linear, s: &Scratch) -> Result<()> {
        let scale = if self.spec.scaled_attention {
            (a.head_dim as f32).powf(-0.5)
        } else {
            1.0
        };
        ops::attention(
            self.rec,
            Attention {
                q: a.q,
                k: a.k,
                v: a.v,
                out: s.attended.matrix(),
                batch: a.batch,
                heads: a.heads,
                head_dim: a.head_dim,
                scale,
                causal: a.causal,
                position_bias: a.position_bias,
                key_mask: a.key_mask,
                from_step: a.from_step,
                kv_group: a.kv_group,
                row_table: a.row_table,
            },
        )?;
        self.linear(out_proj, s.attended.matrix(), s.hidden.matrix(), RESIDUAL)
    }

    /// The fused Q, K, V projection of `input` into `s.qkv`.
    pub fn project_qkv(&mut self, qkv: &Linear, input: &Tensor, s: &Scratch) -> Result<()> {
        self.linear(qkv, input.matrix(), s.qkv.matrix(), Epilogue::default())
    }

    /// The feed-forward block on `input`, added to the stream.
    pub fn feed_forward(
        &mut self,
        ffn_in: &Linear,
        ffn_out: &Linear,
        input: &Tensor,
        s: &Scratch,
    ) -> Result<()> {
        let act = self.spec.activation;
        let activated = if self.spec.gated_ffn {
            self.linear(ffn_in, input.matrix(), s.ffn.matrix(), Epilogue::default())?;
            ops::gated(self.rec, &s.ffn, &s.ffn_gated, act)?;
            &s.ffn_gated
        } else {
            let epilogue = Epilogue {
                activation: act,
                ..Epilogue::default()
            };
            self.linear(ffn_in, input.matrix(), s.ffn.matrix(), epilogue)?;
            &s.ffn
        };
        self.linear(ffn_out, activated.matrix(), s.hidden.matrix(), RESIDUAL)
    }
}
