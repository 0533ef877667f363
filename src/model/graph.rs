//! The encoder-decoder graph's building blocks, recorded as kernel dispatches from the model
//! description. One code path serves every family; the description decides norm placement,
//! positions, scaling and biases.

use super::spec::{ModelSpec, StackSpec};
use super::weights::{Linear, Norm, StackEnds};
use crate::error::Result;
use crate::gpu::{Recorder, Tensor, View, Workspace};
use crate::ops::{
    self, Attention, CacheAppend, Epilogue, Fusion, InputNorm, KeySplit, PositionBias, Positions,
};

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
    /// Workgroups sharing one query row's keys in attention, and their records.
    pub key_splits: usize,
    pub split_records: Tensor,
}

impl Scratch {
    /// Work tensors around `hidden` ([rows, d_model]), which the caller may keep beyond them,
    /// for attention over at most `key_rows` keys.
    pub fn new(
        ws: &mut Workspace,
        spec: &ModelSpec,
        stack: &StackSpec,
        hidden: Tensor,
        key_rows: usize,
    ) -> Result<Scratch> {
        let (d, inner, ff) = (spec.d_model, stack.inner_dim(), stack.ffn_dim);
        let rows = hidden.shape[0];
        let ffn_width = if spec.gated_ffn { 2 * ff } else { ff };
        let queries = rows * stack.heads;
        let key_splits = ops::key_splits(ws.gpu(), queries, key_rows);
        let records = match key_splits {
            1 => 1,
            splits => ops::split_records_len(queries, stack.head_dim, splits),
        };
        Ok(Scratch {
            key_splits,
            split_records: ws.tensor(&[records])?,
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

/// What a sublayer's first matmul reads: the stream, and for a pre-norm model the norm
/// still to apply to it. The fused decode kernel applies the norm as it reads the rows;
/// elsewhere it runs first, into `Scratch::normed`.
#[derive(Clone, Copy)]
pub struct Input<'t> {
    pub x: &'t Tensor,
    pub norm: Option<&'t Norm>,
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
    /// Pre-norm feeds it the stream with the norm to apply; post-norm feeds it the stream
    /// and normalises after the residual add.
    pub fn sublayer<'t>(
        &mut self,
        norm: &'t Norm,
        s: &'t Scratch,
        body: impl FnOnce(&mut Self, Input<'t>) -> Result<()>,
    ) -> Result<()> {
        if self.spec.pre_norm {
            body(
                self,
                Input {
                    x: &s.hidden,
                    norm: Some(norm),
                },
            )
        } else {
            body(
                self,
                Input {
                    x: &s.hidden,
                    norm: None,
                },
            )?;
            self.norm(norm, &s.hidden, &s.hidden)
        }
    }

    /// One dispatch for `layer` on `input` with `fusion` where the fused kernel takes them;
    /// `false` (nothing recorded) where it does not.
    fn fused(
        &mut self,
        layer: &Linear,
        input: Input,
        out: View,
        epilogue: Epilogue,
        fusion: Fusion,
    ) -> Result<bool> {
        let x = input.x.matrix();
        if !self.rec.gpu().fused_kernels() || !ops::fusable(x, &layer.weight) {
            return Ok(false);
        }
        let norm = input.norm.map(|norm| InputNorm {
            kind: self.spec.norm,
            weight: &norm.weight,
            bias: norm.bias.as_ref(),
            eps: self.spec.norm_eps,
        });
        let bias = layer.bias.as_ref().map(|b| &b.parts[0]);
        let fusion = Fusion { norm, ..fusion };
        ops::linear_fused(
            self.rec,
            x,
            &layer.weight.parts[0],
            bias,
            out,
            epilogue,
            fusion,
        )?;
        Ok(true)
    }

    /// The input as a tensor of its own: normalised into `s.normed` when it has a norm.
    fn materialize<'t>(&mut self, input: Input<'t>, s: &'t Scratch) -> Result<&'t Tensor> {
        match input.norm {
            Some(norm) => {
                self.norm(norm, input.x, &s.normed)?;
                Ok(&s.normed)
            }
            None => Ok(input.x),
        }
    }

    /// `layer` on `input` (its norm applied) into `out`.
    pub fn project(
        &mut self,
        layer: &Linear,
        input: Input,
        s: &Scratch,
        out: View,
        epilogue: Epilogue,
    ) -> Result<()> {
        if self.fused(layer, input, out, epilogue, Fusion::default())? {
            return Ok(());
        }
        let x = self.materialize(input, s)?;
        self.linear(layer, x.matrix(), out, epilogue)
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
                split: self.key_split(&a, s),
            },
        )?;
        self.linear(out_proj, s.attended.matrix(), s.hidden.matrix(), RESIDUAL)
    }

    /// The key split of `a`: the adapter's choice for its shape, within what `s` holds.
    fn key_split<'t>(&self, a: &AttentionSpec, s: &'t Scratch) -> Option<KeySplit<'t>> {
        let key_rows = a.k.rows / (a.batch / a.kv_group.max(1)).max(1);
        let splits =
            ops::key_splits(self.rec.gpu(), a.q.rows * a.heads, key_rows).min(s.key_splits);
        (splits > 1).then_some(KeySplit {
            splits,
            records: &s.split_records,
        })
    }

    /// The fused Q, K, V projection of `input` into `s.qkv`, and with `append` its keys and
    /// values (the columns after the queries) into the cache.
    pub fn project_qkv(
        &mut self,
        qkv: &Linear,
        input: Input,
        s: &Scratch,
        append: Option<CacheAppend>,
    ) -> Result<()> {
        let out = s.qkv.matrix();
        let fusion = Fusion {
            append,
            ..Fusion::default()
        };
        if self.fused(qkv, input, out, Epilogue::default(), fusion)? {
            return Ok(());
        }
        let x = self.materialize(input, s)?;
        self.linear(qkv, x.matrix(), out, Epilogue::default())?;
        match append {
            Some(a) => {
                let keys_values = out.columns(a.split, out.cols - a.split);
                ops::kv_cache::append(
                    self.rec,
                    keys_values,
                    a.cache,
                    a.rows_per_sequence,
                    a.capacity,
                )
            }
            None => Ok(()),
        }
    }

    /// The feed-forward block on `input`, added to the stream.
    pub fn feed_forward(
        &mut self,
        ffn_in: &Linear,
        ffn_out: &Linear,
        input: Input,
        s: &Scratch,
    ) -> Result<()> {
        let act = self.spec.activation;
        let epilogue = Epilogue {
            activation: act,
            ..Epilogue::default()
        };
        let activated = if self.spec.gated_ffn {
            let fusion = Fusion {
                gated: true,
                ..Fusion::default()
            };
            if !self.fused(ffn_in, input, s.ffn_gated.matrix(), epilogue, fusion)? {
                let x = self.materialize(input, s)?;
                self.linear(ffn_in, x.matrix(), s.ffn.matrix(), Epilogue::default())?;
                ops::gated(self.rec, &s.ffn, &s.ffn_gated, act)?;
            }
            &s.ffn_gated
        } else {
            self.project(ffn_in, input, s, s.ffn.matrix(), epilogue)?;
            &s.ffn
        };
        self.linear(ffn_out, activated.matrix(), s.hidden.matrix(), RESIDUAL)
    }
}
