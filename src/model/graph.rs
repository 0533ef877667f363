//! The encoder-decoder graph's building blocks, recorded as kernel dispatches from the model
//! description. One code path serves every family; the description decides norm placement,
//! positions, scaling and biases.

pub use super::scratch::Scratch;
use super::spec::{ModelSpec, StackSpec};
use super::weights::{Linear, Norm, StackEnds, SublayerNorms};
use crate::error::Error;
use crate::error::Result;
use crate::gpu::{Recorder, Tensor, View};
use crate::ops::kv_cache::Pages;
use crate::ops::{
    self, Attention, CacheAppend, Epilogue, Fusion, KeySplit, PositionBias, Positions, Query,
    QueryProjection, Rotary, RotaryAppend,
};

pub struct Graph<'a, 'g> {
    pub rec: &'a mut Recorder<'g>,
    pub spec: &'a ModelSpec,
}

/// What attends to what in one attention call.
pub struct AttentionSpec<'t> {
    pub q: Query<'t>,
    pub k: View<'t>,
    pub v: View<'t>,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub causal: bool,
    /// The layer's sliding window, if it slides.
    pub window: Option<usize>,
    pub position_bias: Option<PositionBias<'t>>,
    pub from_step: bool,
    /// Sequences attending at once, and how many of them share one key/value item.
    pub batch: usize,
    pub kv_group: usize,
    pub key_mask: Option<&'t Tensor>,
    pub row_table: Option<&'t Tensor>,
    /// The layer's cache is paged (continuous batching).
    pub pages: Option<Pages<'t>>,
}

/// Rows with the norm still to apply to them: a sublayer's input (the stream and, for a
/// pre-norm model, its norm), or the residual stream of a post-norm model whose last norm
/// the kernels that read it fold in. The fused decode kernel applies the norm as it reads
/// the rows; elsewhere it runs first, into `Scratch::normed` or in place.
#[derive(Clone, Copy)]
pub struct Rows<'t> {
    pub x: &'t Tensor,
    pub norm: Option<&'t Norm>,
}

impl<'t> Rows<'t> {
    pub fn plain(x: &'t Tensor) -> Rows<'t> {
        Rows { x, norm: None }
    }
}

/// Where a sublayer's output projection adds its result: the stream `from` (with its
/// pending norm), written to `to` (the same tensor, or the other of the two stream buffers
/// where the post-norm model's kernels fold its norms in).
#[derive(Clone, Copy)]
pub struct ResidualAdd<'t> {
    pub from: Rows<'t>,
    pub to: &'t Tensor,
    /// The sublayer's output is normalised before it joins the stream (Gemma).
    pub output_norm: Option<&'t Norm>,
}

const RESIDUAL: Epilogue = Epilogue {
    activation: ops::Activation::Identity,
    alpha: 1.0,
    softcap: None,
    accumulate: true,
};

impl Graph<'_, '_> {
    pub fn norm(&mut self, norm: &Norm, x: &Tensor, y: &Tensor) -> Result<()> {
        ops::norm(self.rec, norm, x, y)
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

    /// Token embeddings (scaled) and absolute positions into `s.hidden`, for ids holding
    /// `rows_per_sequence` tokens of each sequence: the stream, with the embedding norm
    /// still to apply where the stream's readers fold it in (see [`Scratch::spare`]).
    pub fn embed<'t>(
        &mut self,
        stack: &StackSpec,
        ends: &'t StackEnds,
        ids: &Tensor,
        rows_per_sequence: usize,
        from_step: bool,
        s: &'t Scratch,
    ) -> Result<Rows<'t>> {
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
            stack.embed_scale,
            positions,
            &s.hidden,
        )?;
        let stream = Rows {
            x: &s.hidden,
            norm: ends.embedding_norm.as_ref(),
        };
        match s.spare {
            Some(_) => Ok(stream),
            None => self.resolve(stream),
        }
    }

    /// The stream with its pending norm applied in place.
    pub fn resolve<'t>(&mut self, stream: Rows<'t>) -> Result<Rows<'t>> {
        if let Some(norm) = stream.norm {
            self.norm(norm, stream.x, stream.x)?;
        }
        Ok(Rows::plain(stream.x))
    }

    /// The encoder's output: the stream with its pending norm and the stack's final norm
    /// applied, in `out`.
    pub fn finish(&mut self, ends: &StackEnds, stream: Rows, out: &Tensor) -> Result<()> {
        match stream.x.buffer == out.buffer {
            true => self.resolve(stream).map(drop)?,
            false => self.place(stream, out)?,
        }
        match &ends.final_norm {
            Some(norm) => self.norm(norm, out, out),
            None => Ok(()),
        }
    }

    /// What the output layer reads: the stream with at most one norm still to apply (its
    /// pending one or the stack's final norm, which the head's dispatch folds in).
    pub fn head_input<'t>(&mut self, ends: &'t StackEnds, stream: Rows<'t>) -> Result<Rows<'t>> {
        match (&ends.final_norm, stream.norm) {
            (Some(last), Some(_)) => Ok(Rows {
                norm: Some(last),
                ..self.resolve(stream)?
            }),
            (Some(last), None) => Ok(Rows {
                x: stream.x,
                norm: Some(last),
            }),
            (None, _) => Ok(stream),
        }
    }

    /// `rows` with their norm applied, written to `to`.
    fn place(&mut self, rows: Rows, to: &Tensor) -> Result<()> {
        match rows.norm {
            Some(norm) => self.norm(norm, rows.x, to),
            None => ops::activation(self.rec, rows.x, to, ops::Activation::Identity),
        }
    }

    /// A residual sublayer: `body` reads its input and adds its output to the stream through
    /// the [`ResidualAdd`] it is given; returns the stream after it. Pre-norm feeds it the
    /// stream with the norm to apply. Post-norm normalises after the residual add: where the
    /// scratch has a spare stream buffer, the norm is left pending for the next readers to
    /// fold in, and the sum goes to the other buffer; elsewhere it runs in place.
    pub fn sublayer<'t>(
        &mut self,
        norms: &'t SublayerNorms,
        stream: Rows<'t>,
        s: &'t Scratch,
        body: impl FnOnce(&mut Self, Rows<'t>, ResidualAdd<'t>) -> Result<()>,
    ) -> Result<Rows<'t>> {
        let norm = &norms.norm;
        let folding = match &s.spare {
            Some(spare) if !self.spec.pre_norm => Some(spare),
            _ => None,
        };
        let Some(spare) = folding else {
            let stream = self.resolve(stream)?;
            let add = ResidualAdd {
                from: stream,
                to: stream.x,
                output_norm: norms.output.as_ref(),
            };
            if self.spec.pre_norm {
                body(
                    self,
                    Rows {
                        x: stream.x,
                        norm: Some(norm),
                    },
                    add,
                )?;
                return Ok(stream);
            }
            body(self, stream, add)?;
            self.norm(norm, stream.x, stream.x)?;
            return Ok(stream);
        };
        let to = if stream.x.buffer == s.hidden.buffer {
            spare
        } else {
            &s.hidden
        };
        let add = ResidualAdd {
            from: stream,
            to,
            output_norm: norms.output.as_ref(),
        };
        body(self, stream, add)?;
        Ok(Rows {
            x: to,
            norm: Some(norm),
        })
    }

    /// `layer` on `x`, added to the stream as `add` says.
    fn add_residual(
        &mut self,
        layer: &Linear,
        x: View,
        s: &Scratch,
        add: ResidualAdd,
    ) -> Result<()> {
        let in_place = add.from.norm.is_none() && add.from.x.buffer == add.to.buffer;
        if let Some(norm) = add.output_norm {
            // The norm reads whole output rows, so it runs on its own after the product
            // (into `normed`, whose input-norm use is over by the time a sublayer ends).
            if !in_place {
                return Err(Error::invalid(
                    "a sublayer's output norm with a pending stream norm",
                ));
            }
            self.linear(layer, x, s.normed.matrix(), Epilogue::default())?;
            return ops::norm_add(self.rec, norm, &s.normed, add.to);
        }
        if in_place {
            return self.linear(layer, x, add.to.matrix(), RESIDUAL);
        }
        let fusion = Fusion {
            residual: Some(ops::Residual {
                stream: add.from.x,
                norm: add.from.norm,
            }),
            ..Fusion::default()
        };
        if self.fused(layer, x, add.to.matrix(), Epilogue::default(), fusion)? {
            return Ok(());
        }
        self.place(add.from, add.to)?;
        self.linear(layer, x, add.to.matrix(), RESIDUAL)
    }

    /// One dispatch for `layer` on `x` with `fusion` where the fused kernel takes them;
    /// `false` (nothing recorded) where it does not.
    fn fused(
        &mut self,
        layer: &Linear,
        x: View,
        out: View,
        epilogue: Epilogue,
        fusion: Fusion,
    ) -> Result<bool> {
        if !self.rec.gpu().fused_kernels() || !ops::fusable(x, &layer.weight) {
            return Ok(false);
        }
        let bias = layer.bias.as_ref().map(|b| &b.parts[0]);
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
    fn materialize<'t>(&mut self, input: Rows<'t>, s: &'t Scratch) -> Result<&'t Tensor> {
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
        input: Rows,
        s: &Scratch,
        out: View,
        epilogue: Epilogue,
    ) -> Result<()> {
        let fusion = Fusion {
            norm: input.norm,
            ..Fusion::default()
        };
        if self.fused(layer, input.x.matrix(), out, epilogue, fusion)? {
            return Ok(());
        }
        let x = self.materialize(input, s)?;
        self.linear(layer, x.matrix(), out, epilogue)
    }

    /// The output layer on `input` with the first stage of a greedy choice in the same
    /// dispatch: each workgroup's best column into `partials` instead of the logits `out`.
    /// `false` (nothing recorded) where the fused kernel does not take them.
    pub fn head_argmax(
        &mut self,
        layer: &Linear,
        input: Rows,
        out: View,
        epilogue: Epilogue,
        partials: &Tensor,
    ) -> Result<bool> {
        let fusion = Fusion {
            norm: input.norm,
            argmax: Some(partials),
            ..Fusion::default()
        };
        self.fused(layer, input.x.matrix(), out, epilogue, fusion)
    }

    /// Attention into `s.attended`, then the output projection added to the stream.
    pub fn attend(
        &mut self,
        a: AttentionSpec,
        out_proj: &Linear,
        s: &Scratch,
        add: ResidualAdd,
    ) -> Result<()> {
        let scale = self.spec.attention_scale(a.head_dim);
        ops::attention(
            self.rec,
            Attention {
                q: a.q,
                k: a.k,
                v: a.v,
                out: s.attended.matrix(),
                batch: a.batch,
                heads: a.heads,
                kv_heads: a.kv_heads,
                head_dim: a.head_dim,
                scale,
                causal: a.causal,
                window: a.window,
                softcap: self.spec.attention_softcap,
                position_bias: a.position_bias,
                key_mask: a.key_mask,
                from_step: a.from_step,
                kv_group: a.kv_group,
                row_table: a.row_table,
                pages: a.pages,
                split: self.key_split(&a, s),
            },
        )?;
        self.add_residual(out_proj, s.attended.matrix(), s, add)
    }

    /// The key split of `a`: the adapter's choice for its shape, within what `s` holds.
    fn key_split<'t>(&self, a: &AttentionSpec, s: &'t Scratch) -> Option<KeySplit<'t>> {
        let key_rows = match a.pages {
            Some(pages) => pages.blocks_per_sequence * pages.block_rows,
            None => a.k.rows / (a.batch / a.kv_group.max(1)).max(1),
        };
        let splits = self.splits(a.q.rows() * a.heads, key_rows, s);
        (splits > 1).then_some(KeySplit {
            splits,
            records: &s.split_records,
        })
    }

    /// Workgroups per query row for `queries` (rows x heads) over `key_rows` keys.
    fn splits(&self, queries: usize, key_rows: usize, s: &Scratch) -> usize {
        ops::key_splits(self.rec.gpu(), queries, key_rows).min(s.key_splits)
    }

    /// The queries of a cross-attention over `key_rows` keys per item: where the fused
    /// kernels run and the keys stay in one workgroup per query, projected from `input` by
    /// the attention kernel itself (one dispatch fewer); otherwise `layer` on `input` into
    /// `s.query`.
    pub fn cross_query<'t>(
        &mut self,
        layer: &'t Linear,
        input: Rows<'t>,
        s: &'t Scratch,
        key_rows: usize,
    ) -> Result<Query<'t>> {
        let x = input.x.matrix();
        let queries = x.rows * self.spec.decoder.heads;
        if self.rec.gpu().fused_kernels()
            && ops::fusable(x, &layer.weight)
            && self.splits(queries, key_rows, s) == 1
        {
            return Ok(Query::Projected(QueryProjection {
                x,
                weight: &layer.weight.parts[0],
                bias: layer.bias.as_ref().map(|b| &b.parts[0]),
                norm: input.norm,
            }));
        }
        let out = s.query.matrix();
        self.project(layer, input, s, out, Epilogue::default())?;
        Ok(Query::Given(out))
    }

    /// The fused Q, K, V projection of `input` into `s.qkv`, and with `append` its keys and
    /// values (the columns after the queries) into the cache.
    pub fn project_qkv(
        &mut self,
        qkv: &Linear,
        input: Rows,
        s: &Scratch,
        append: Option<CacheAppend>,
    ) -> Result<()> {
        let out = s.qkv.matrix();
        // The fused kernel appends to caches of whole sequences, not to a paged one.
        let fused_append = append.filter(|a| a.pages.is_none());
        let fusion = Fusion {
            norm: input.norm,
            append: fused_append,
            ..Fusion::default()
        };
        let left = match self.fused(qkv, input.x.matrix(), out, Epilogue::default(), fusion)? {
            true => append.filter(|a| a.pages.is_some()),
            false => {
                let x = self.materialize(input, s)?;
                self.linear(qkv, x.matrix(), out, Epilogue::default())?;
                append
            }
        };
        match left {
            Some(a) => {
                let keys_values = out.columns(a.split, out.cols - a.split);
                ops::kv_cache::append(
                    self.rec,
                    keys_values,
                    a.cache,
                    a.rows_per_sequence,
                    a.capacity,
                    a.pages,
                )
            }
            None => Ok(()),
        }
    }

    /// Rotary positions of the queries and keys in `s.qkv` (rotary models), for
    /// `rows_per_sequence` rows per sequence after `step.pos` when `from_step`; with `append`
    /// the rotated keys and the values go to its cache instead.
    pub fn rotate(
        &mut self,
        stack: &StackSpec,
        table: &Tensor,
        rows_per_sequence: usize,
        from_step: bool,
        s: &Scratch,
        append: Option<CacheAppend>,
    ) -> Result<()> {
        ops::rotary(
            self.rec,
            Rotary {
                qkv: &s.qkv,
                table,
                heads: stack.heads,
                kv_heads: stack.kv_heads,
                head_dim: stack.head_dim,
                rows_per_sequence,
                from_step,
                append: append.map(|a| RotaryAppend {
                    cache: a.cache,
                    capacity: a.capacity,
                    pages: a.pages,
                }),
            },
        )
    }

    /// The feed-forward block on `input`, added to the stream.
    pub fn feed_forward(
        &mut self,
        ffn_in: &Linear,
        ffn_out: &Linear,
        input: Rows,
        s: &Scratch,
        add: ResidualAdd,
    ) -> Result<()> {
        let act = self.spec.activation;
        let epilogue = Epilogue {
            activation: act,
            ..Epilogue::default()
        };
        let activated = if self.spec.gated_ffn {
            let fusion = Fusion {
                norm: input.norm,
                gated: true,
                ..Fusion::default()
            };
            let out = s.ffn_gated.matrix();
            if !self.fused(ffn_in, input.x.matrix(), out, epilogue, fusion)? {
                let x = self.materialize(input, s)?;
                self.linear(ffn_in, x.matrix(), s.ffn.matrix(), Epilogue::default())?;
                ops::gated(self.rec, &s.ffn, &s.ffn_gated, act)?;
            }
            &s.ffn_gated
        } else {
            self.project(ffn_in, input, s, s.ffn.matrix(), epilogue)?;
            &s.ffn
        };
        self.add_residual(ffn_out, activated.matrix(), s, add)
    }

    /// An SSRU decoder cell with its gate projection and `state`, on the stream it adds to
    /// (post-norm only: its input is `add.from`), one token per sequence when fused.
    pub fn ssru(
        &mut self,
        gates: &Linear,
        state: &Tensor,
        gate_values: &Tensor,
        tokens: usize,
        s: &Scratch,
        add: ResidualAdd,
    ) -> Result<()> {
        let input = add.from;
        if add.output_norm.is_some() {
            return Err(Error::invalid("an SSRU cell with an output norm"));
        }
        let fusion = Fusion {
            norm: input.norm,
            ssru: Some(state),
            ..Fusion::default()
        };
        let x = input.x.matrix();
        if tokens == 1
            && add.to.buffer != input.x.buffer
            && self.fused(gates, x, add.to.matrix(), Epilogue::default(), fusion)?
        {
            return Ok(());
        }
        let x = self.materialize(input, s)?;
        self.linear(gates, x.matrix(), gate_values.matrix(), Epilogue::default())?;
        if input.norm.is_some() || input.x.buffer != add.to.buffer {
            self.place(input, add.to)?;
        }
        ops::ssru(self.rec, gate_values, state, add.to, tokens)
    }
}
