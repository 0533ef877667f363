//! The decoder, recorded once for a fixed number of new rows per step and replayed at every
//! position: the self-attention cache is preallocated to the maximum length and written in
//! place, and positions come from the step uniform, so the loop allocates nothing.

use std::sync::Arc;

use super::cache_layout::{cache_rows, initial_table};
use super::encoder::Encoded;
use super::graph::{AttentionSpec, Graph, Scratch};
use super::loaded::Model;
use super::relative_position::bucket_table;
use super::spec::{DecoderCell, Positions};
use super::weights::DecoderMixer;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, MAX_STEPS_PER_SUBMIT, Plan, Recorder, Tensor, Workspace};
use crate::ops::kv_cache::Pages;
use crate::ops::{self, BeamScoring, CacheAppend, Epilogue, PositionBias, Sampling};

/// Rows of one block of a paged cache (vLLM's default).
pub const BLOCK_ROWS: usize = 16;

/// How a decoder is laid out: `sequences` decoded side by side (a batch, or the beams of
/// a batch: `beams` consecutive sequences per input), `tokens` fed per sequence per step,
/// and room for `capacity` tokens per sequence in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderShape {
    pub sequences: usize,
    pub beams: usize,
    pub tokens: usize,
    pub capacity: usize,
}

impl DecoderShape {
    /// One sequence, `tokens` at a time (teacher forcing feeds a whole sequence at once).
    pub fn single(tokens: usize, capacity: usize) -> Self {
        DecoderShape {
            sequences: 1,
            beams: 1,
            tokens,
            capacity,
        }
    }

    pub(super) fn rows(&self) -> usize {
        self.sequences * self.tokens
    }
}

/// What a decoder's step leaves for the CPU to read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Choice {
    /// The logits: the CPU chooses.
    Logits,
    /// The argmax token, which also becomes the next step's input on the GPU.
    Argmax,
    /// A sampled token, likewise fed to the next step.
    Sample(Sampling),
    /// Beam search's best `keep` continuations of each input (`Decoder::step_candidates`).
    BeamCandidates { keep: usize },
}

impl Choice {
    /// Whether the step's tokens feed the next step without leaving the GPU.
    pub fn feeds_itself(&self) -> bool {
        matches!(self, Choice::Argmax | Choice::Sample(_))
    }
}

/// The beam kernel's operands: the running scores written before each step, and the
/// candidates read back after it.
pub(super) struct BeamOutput {
    pub(super) scores: Tensor,
    pub(super) candidates: Tensor,
    pub(super) staging: wgpu::Buffer,
    pub(super) keep: usize,
}

/// u32 [MAX_STEPS_PER_SUBMIT, sequences]: each step's ids, read back together.
pub(super) struct History {
    pub(super) ids: Tensor,
    pub(super) staging: wgpu::Buffer,
}

pub struct Decoder {
    pub(super) gpu: Arc<Gpu>,
    pub(super) plan: Plan,
    pub(super) shape: DecoderShape,
    /// u32 [sequences * tokens]: the tokens fed at this step. A self-feeding decoder's
    /// argmax writes the next step's here, so they never visit the CPU.
    pub(super) ids: Tensor,
    /// A self-feeding decoder's record of the ids of each step of one submission.
    pub(super) history: Option<History>,
    pub(super) beam: Option<BeamOutput>,
    /// [sequences * tokens, vocab], or [.., shortlist] with a shortlist.
    pub(super) logits: Tensor,
    /// The token id of each logits column when a shortlist narrows the output layer.
    pub(super) shortlist: Option<Vec<u32>>,
    /// u32 [sequences, capacity]: which sequence's cache rows hold each sequence's position
    /// t (beams).
    pub(super) row_table: Option<Tensor>,
    /// Where the logits are read back (`Choice::Logits` only).
    pub(super) logits_staging: Option<wgpu::Buffer>,
    pub(super) vocab: usize,
    /// Rows of the embedding table: ids fed to the decoder stay below this.
    pub(super) embedding_rows: usize,
    pub(super) cache_rows: Vec<usize>,
    /// Rows begin inputs of their own at steps of their own (continuous batching).
    pub(super) continuous: bool,
    /// f32 [rows, columns]: 0 where a row's shortlist keeps a column, -inf elsewhere.
    pub(super) shortlist_mask: Option<Tensor>,
    /// u32 [rows, blocks_per_sequence]: the pool block holding each row's positions
    /// b * BLOCK_ROWS .. (b + 1) * BLOCK_ROWS (a continuous decoder with paged caches).
    pub(super) block_table: Option<Tensor>,
    pub(super) blocks_per_sequence: usize,
    /// Bytes of every layer's self-attention cache (or SSRU state).
    pub(super) cache_bytes: usize,
    pub(super) _workspace: Workspace,
}

impl Model {
    /// The most tokens a decoder cache may hold for this model.
    pub fn max_decoder_positions(&self) -> Option<usize> {
        self.spec.positions.limit()
    }

    /// A decoder over `encoded` laid out as `shape`, whose steps leave `choice` for the CPU.
    /// A choice that feeds itself (one token per step) makes each step's tokens the next
    /// step's input without leaving the GPU.
    pub fn decoder(
        &self,
        gpu: &Arc<Gpu>,
        encoded: &Encoded,
        shape: DecoderShape,
        choice: Choice,
    ) -> Result<Decoder> {
        self.build_decoder(gpu, encoded, shape, choice, None)
    }

    /// [`Model::decoder`], or with `pool_blocks` a continuous one, whose rows begin inputs of
    /// their own at steps of their own (see [`Model::continuous_decoder`]): its caches are
    /// paged over a pool of that many blocks, and its output layer keeps every word, with a
    /// mask per row where the model has a shortlist.
    pub(super) fn build_decoder(
        &self,
        gpu: &Arc<Gpu>,
        encoded: &Encoded,
        shape: DecoderShape,
        choice: Choice,
        pool_blocks: Option<usize>,
    ) -> Result<Decoder> {
        let continuous = pool_blocks.is_some();
        let spec = &self.spec;
        let DecoderShape {
            sequences,
            beams,
            tokens,
            capacity,
        } = shape;
        if sequences == 0
            || tokens == 0
            || tokens > capacity
            || beams == 0
            || sequences != encoded.batch * beams
        {
            return Err(Error::invalid(format!(
                "decoder: {sequences} sequences of {tokens} tokens (capacity {capacity}) over {} inputs with {beams} beams",
                encoded.batch
            )));
        }
        // Cache rows are indexed with u32 on the GPU.
        if sequences
            .checked_mul(capacity)
            .is_none_or(|rows| rows > u32::MAX as usize)
        {
            return Err(Error::invalid(format!(
                "{sequences} sequences of up to {capacity} tokens are more than a decoder can hold"
            )));
        }
        if spec.decoder_cell == DecoderCell::Ssru && beams > 1 {
            return Err(Error::invalid(
                "beam search is not supported with an SSRU decoder (use num_beams 1)",
            ));
        }
        if choice.feeds_itself() && tokens != 1 {
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
        let rows = shape.rows();
        let stack = &spec.decoder;
        let (inner, kv) = (stack.inner_dim(), stack.kv_dim());
        let width = stack.width;
        let mut ws = Workspace::new(gpu.clone());
        let ids = ws.tensor(&[rows])?;
        let history = match choice.feeds_itself() {
            true => Some(History {
                ids: ws.tensor(&[MAX_STEPS_PER_SUBMIT, rows])?,
                staging: gpu.staging_buffer((MAX_STEPS_PER_SUBMIT * rows * 4) as u64),
            }),
            false => None,
        };
        let beam = match choice {
            Choice::BeamCandidates { keep } => Some(BeamOutput {
                scores: ws.tensor(&[rows])?,
                candidates: ws.tensor(&[encoded.batch, keep, 2])?,
                staging: gpu.staging_buffer((encoded.batch * keep * 2 * 4) as u64),
                keep,
            }),
            _ => None,
        };
        let output = match continuous {
            true => self.full_output_layer(),
            false => self.output_layer(gpu, &mut ws, encoded)?,
        };
        let columns = output.layer.weight.shape[0];
        let logits = ws.tensor(&[rows, columns])?;
        // Each row's own input's shortlist: its input mask, row by row (a continuous
        // decoder's rows set theirs as they begin).
        let shortlist_mask = match &output.input_masks {
            Some(masks) => {
                let per_row = (0..rows).flat_map(|r| &masks[r / tokens / beams]);
                let values: Vec<f32> = per_row.copied().collect();
                Some(ws.upload_f32(&values, &[rows, columns])?)
            }
            None if continuous && self.shortlist.is_some() => {
                Some(ws.upload_f32(&vec![0.0; rows * columns], &[rows, columns])?)
            }
            None => None,
        };
        let argmax_partials = match choice {
            Choice::Argmax => Some(ws.tensor(&ops::argmax_partials_shape(rows, columns))?),
            _ => None,
        };
        let hidden = ws.tensor(&[rows, width])?;
        let encoded_rows = encoded.cross_kv.shape[0] / encoded.batch.max(1);
        let scratch = Scratch::new(&mut ws, spec, stack, hidden, capacity.max(encoded_rows))?;
        let cache_rows = cache_rows(stack, capacity, tokens);
        // A continuous decoder pages the caches that keep every position: one pool of
        // blocks per layer, the same block table for all (rings stay per sequence).
        let blocks_per_sequence = capacity.div_ceil(BLOCK_ROWS);
        let paged: Vec<bool> = (self.weights.decoder.iter().zip(&cache_rows))
            .map(|(layer, &rows)| {
                pool_blocks.is_some()
                    && rows == capacity
                    && matches!(layer.mixer, DecoderMixer::SelfAttention { .. })
            })
            .collect();
        let block_table = match paged.contains(&true) {
            // Block 0 is where idle rows write; rows are given blocks as they grow.
            true => Some(ws.upload_u32(&vec![0; sequences * blocks_per_sequence])?),
            false => None,
        };
        let pool_rows = (pool_blocks.unwrap_or(0) + 1) * BLOCK_ROWS;
        // Per layer: the key/value cache of self-attention (a ring of the last positions
        // where the layer slides), or the state of an SSRU.
        let memories = (self.weights.decoder.iter().zip(&cache_rows).zip(&paged))
            .map(|((layer, &rows), &paged)| match layer.mixer {
                DecoderMixer::SelfAttention { .. } if paged => ws.tensor(&[pool_rows, 2 * kv]),
                DecoderMixer::SelfAttention { .. } => ws.tensor(&[sequences * rows, 2 * kv]),
                DecoderMixer::Ssru { .. } => ws.tensor(&[sequences, width]),
            })
            .collect::<Result<Vec<_>>>()?;
        let pages = |l: usize| {
            let table = block_table.as_ref().filter(|_| paged[l])?;
            Some(Pages {
                table,
                block_rows: BLOCK_ROWS,
                blocks_per_sequence,
            })
        };
        let layer_capacity = |l: usize| match paged[l] {
            true => blocks_per_sequence * BLOCK_ROWS,
            false => cache_rows[l],
        };
        let gates = match spec.decoder_cell {
            DecoderCell::Ssru => Some(ws.tensor(&[rows, 2 * width])?),
            DecoderCell::SelfAttention => None,
        };
        let row_table = if beams > 1 {
            Some(ws.upload_u32(&initial_table(sequences, capacity))?)
        } else {
            None
        };
        let rotary = self.rotary_table(&mut ws, stack, capacity)?;
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
        let mut stream = g.embed(stack, ends, &ids, tokens, true, &scratch)?;
        let cross = encoded.cross_kv.matrix();
        for (l, layer) in self.weights.decoder.iter().enumerate() {
            let memory = &memories[l];
            stream = g.sublayer(
                &layer.self_norm,
                stream,
                &scratch,
                |g, x, add| match &layer.mixer {
                    DecoderMixer::Ssru { gates: projection } => {
                        let gates = gates.as_ref().ok_or_else(|| {
                            Error::invalid("an SSRU layer in a self-attention decoder")
                        })?;
                        // Post-norm only (the spec refuses pre-norm SSRU models): its input
                        // is the stream it adds to.
                        g.ssru(projection, memory, gates, tokens, &scratch, add)
                    }
                    DecoderMixer::SelfAttention { qkv, out } => {
                        let append = CacheAppend {
                            cache: memory,
                            split: inner,
                            rows_per_sequence: tokens,
                            capacity: layer_capacity(l),
                            pages: pages(l),
                        };
                        // A rotary model appends its keys once they are rotated.
                        match &rotary {
                            None => g.project_qkv(qkv, x, &scratch, Some(append))?,
                            Some(table) => {
                                g.project_qkv(qkv, x, &scratch, None)?;
                                g.rotate(stack, table, tokens, true, &scratch, Some(append))?;
                            }
                        }
                        let qkv = scratch.qkv.matrix();
                        let attention = AttentionSpec {
                            q: qkv.columns(0, inner).into(),
                            k: memory.matrix().columns(0, kv),
                            v: memory.matrix().columns(kv, kv),
                            heads: stack.heads,
                            kv_heads: stack.kv_heads,
                            head_dim: stack.head_dim,
                            causal: true,
                            window: stack.window(l),
                            position_bias,
                            from_step: true,
                            batch: sequences,
                            kv_group: 1,
                            key_mask: None,
                            row_table: row_table.as_ref(),
                            pages: pages(l),
                        };
                        g.attend(attention, out, &scratch, add)
                    }
                },
            )?;
            stream = g.sublayer(&layer.cross_norm, stream, &scratch, |g, x, add| {
                let q = g.cross_query(&layer.cross_q, x, &scratch, encoded_rows)?;
                let attention = AttentionSpec {
                    q,
                    k: cross.columns(2 * l * kv, kv),
                    v: cross.columns((2 * l + 1) * kv, kv),
                    heads: stack.heads,
                    kv_heads: stack.kv_heads,
                    head_dim: stack.head_dim,
                    causal: false,
                    window: None,
                    position_bias: None,
                    from_step: false,
                    batch: sequences,
                    kv_group: beams,
                    key_mask: encoded.mask.as_ref(),
                    row_table: None,
                    pages: None,
                };
                g.attend(attention, &layer.cross_out, &scratch, add)
            })?;
            stream = g.sublayer(&layer.ffn_norm, stream, &scratch, |g, x, add| {
                g.feed_forward(&layer.ffn_in, &layer.ffn_out, x, &scratch, add)
            })?;
        }
        let head = Epilogue {
            alpha: spec.lm_head_scale,
            softcap: spec.logits_softcap,
            ..Epilogue::default()
        };
        // The last norm goes into the head's own dispatch where the kernel allows, and so
        // does a greedy choice's first stage.
        let last = g.head_input(ends, stream)?;
        let vocabulary = output.vocabulary.as_ref();
        if let Some(partials) = &argmax_partials
            && shortlist_mask.is_none()
            && g.head_argmax(&output.layer, last, logits.matrix(), head, partials)?
        {
            ops::argmax_partials(g.rec, partials, &ids, vocabulary)?;
        } else {
            g.project(&output.layer, last, &scratch, logits.matrix(), head)?;
            if let Some(mask) = &shortlist_mask {
                ops::add(g.rec, mask, &logits)?;
            }
            // A plan that reads logits chooses on the CPU: no argmax.
            match &choice {
                Choice::Logits => {}
                Choice::Argmax => ops::argmax(g.rec, &logits, &ids, vocabulary)?,
                Choice::Sample(sampling) => {
                    ops::sample(g.rec, &logits, &ids, vocabulary, sampling)?
                }
                Choice::BeamCandidates { keep } => {
                    let out = beam.as_ref().expect("made for this choice");
                    let scoring = BeamScoring {
                        logits: &logits,
                        scores: &out.scores,
                        candidates: &out.candidates,
                        vocabulary,
                        beams,
                        keep: *keep,
                        vocab: spec.vocab_size,
                    };
                    ops::beam_candidates(g.rec, &scoring)?
                }
            }
        }
        let plan = rec.finish()?;
        Ok(Decoder {
            gpu: gpu.clone(),
            plan,
            shape,
            ids,
            history,
            beam,
            // Only a decoder that leaves the logits to the CPU reads them back.
            logits_staging: (choice == Choice::Logits)
                .then(|| gpu.staging_buffer((logits.len() * 4) as u64)),
            logits,
            shortlist: output.shortlist,
            row_table,
            vocab: spec.vocab_size,
            embedding_rows: self.weights.decoder_ends.embedding.shape[0],
            cache_rows: (self.weights.decoder.iter().zip(cache_rows))
                .map(|(layer, rows)| match layer.mixer {
                    DecoderMixer::SelfAttention { .. } => rows,
                    DecoderMixer::Ssru { .. } => 0,
                })
                .collect(),
            continuous,
            shortlist_mask,
            block_table,
            blocks_per_sequence,
            cache_bytes: memories.iter().map(|m| m.len() * 4).sum(),
            _workspace: ws,
        })
    }
}
