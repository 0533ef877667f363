//! The decoder, recorded once for a fixed number of new rows per step and replayed at every
//! position: the self-attention cache is preallocated to the maximum length and written in
//! place, and positions come from the step uniform, so the loop allocates nothing.

use std::sync::Arc;

use super::cache_layout::{cache_rows, continue_histories, initial_table};
use super::encoder::Encoded;
use super::graph::{AttentionSpec, Graph, Scratch};
use super::loaded::Model;
use super::relative_position::bucket_table;
use super::spec::{DecoderCell, Positions};
use super::weights::DecoderMixer;
use crate::error::{Error, Result};
use crate::gpu::{
    DispatchTime, Gpu, KernelName, MAX_STEPS_PER_SUBMIT, Plan, Recorder, Tensor, Workspace,
};
use crate::ops::{self, BeamScoring, CacheAppend, Epilogue, PositionBias, Sampling};

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

    fn rows(&self) -> usize {
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
struct BeamOutput {
    scores: Tensor,
    candidates: Tensor,
    staging: wgpu::Buffer,
    keep: usize,
}

/// u32 [MAX_STEPS_PER_SUBMIT, sequences]: each step's ids, read back together.
struct History {
    ids: Tensor,
    staging: wgpu::Buffer,
}

pub struct Decoder {
    gpu: Arc<Gpu>,
    plan: Plan,
    shape: DecoderShape,
    /// u32 [sequences * tokens]: the tokens fed at this step. A self-feeding decoder's
    /// argmax writes the next step's here, so they never visit the CPU.
    ids: Tensor,
    /// A self-feeding decoder's record of the ids of each step of one submission.
    history: Option<History>,
    beam: Option<BeamOutput>,
    /// [sequences * tokens, vocab], or [.., shortlist] with a shortlist.
    logits: Tensor,
    /// The token id of each logits column when a shortlist narrows the output layer.
    shortlist: Option<Vec<u32>>,
    /// u32 [sequences, capacity]: which sequence's cache rows hold each sequence's position
    /// t (beams).
    row_table: Option<Tensor>,
    /// Where the logits are read back (`Choice::Logits` only).
    logits_staging: Option<wgpu::Buffer>,
    vocab: usize,
    /// Rows of the embedding table: ids fed to the decoder stay below this.
    embedding_rows: usize,
    cache_rows: Vec<usize>,
    _workspace: Workspace,
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
        let output = self.output_layer(gpu, &mut ws, encoded)?;
        let columns = output.layer.weight.shape[0];
        let logits = ws.tensor(&[rows, columns])?;
        let argmax_partials = match choice {
            Choice::Argmax => Some(ws.tensor(&ops::argmax_partials_shape(rows, columns))?),
            _ => None,
        };
        let hidden = ws.tensor(&[rows, width])?;
        let encoded_rows = encoded.cross_kv.shape[0] / encoded.batch.max(1);
        let scratch = Scratch::new(&mut ws, spec, stack, hidden, capacity.max(encoded_rows))?;
        let cache_rows = cache_rows(stack, capacity, tokens);
        // Per layer: the key/value cache of self-attention (a ring of the last positions
        // where the layer slides), or the state of an SSRU.
        let memories = (self.weights.decoder.iter().zip(&cache_rows))
            .map(|(layer, &rows)| match layer.mixer {
                DecoderMixer::SelfAttention { .. } => ws.tensor(&[sequences * rows, 2 * kv]),
                DecoderMixer::Ssru { .. } => ws.tensor(&[sequences, width]),
            })
            .collect::<Result<Vec<_>>>()?;
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
                            capacity: cache_rows[l],
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
            && g.head_argmax(&output.layer, last, logits.matrix(), head, partials)?
        {
            ops::argmax_partials(g.rec, partials, &ids, vocabulary)?;
        } else {
            g.project(&output.layer, last, &scratch, logits.matrix(), head)?;
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
            _workspace: ws,
        })
    }
}

impl Decoder {
    /// Sets the tokens for the next step (not needed when the decoder feeds itself).
    pub fn set_ids(&self, ids: &[u32]) -> Result<()> {
        if ids.len() != self.shape.rows() {
            return Err(Error::invalid(format!(
                "decoder takes {} ids per step, got {}",
                self.shape.rows(),
                ids.len()
            )));
        }
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= self.embedding_rows) {
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

    /// Beam search: after `pos` tokens, sequence s continues the history of sequence
    /// `sources[s]`. Only the small row table (which sequence's cache rows hold each
    /// position) changes; no cached key or value moves.
    pub fn reorder(&self, table: &mut [u32], sources: &[usize], pos: usize) -> Result<()> {
        let (sequences, capacity) = (self.shape.sequences, self.shape.capacity);
        let Some(row_table) = &self.row_table else {
            return Err(Error::invalid("this decoder was not built for beams"));
        };
        if sources.len() != sequences
            || table.len() != sequences * capacity
            || sources.iter().any(|&s| s >= sequences)
        {
            return Err(Error::invalid(
                "beam reorder: sources do not match the decoder",
            ));
        }
        continue_histories(table, sources, pos, capacity);
        self.gpu
            .queue
            .write_buffer(&row_table.buffer, 0, bytemuck::cast_slice(table));
        Ok(())
    }

    /// The row table of a fresh beam decoder: each sequence's positions are in its own rows.
    pub fn initial_table(&self) -> Vec<u32> {
        initial_table(self.shape.sequences, self.shape.capacity)
    }

    /// Kernel dispatches of one step.
    pub fn dispatches_per_step(&self) -> usize {
        self.plan.dispatches()
    }

    /// Each layer's cache rows per sequence: every position, or for a sliding layer the
    /// ring of its window's positions (0 for an SSRU layer, which keeps a state instead).
    pub fn cache_rows(&self) -> &[usize] {
        &self.cache_rows
    }

    /// The kernel of each dispatch of one step, in order.
    pub fn step_kernels(&self) -> Vec<KernelName> {
        self.plan.kernels()
    }

    /// The GPU time of each dispatch of one step at `pos` (see [`Plan::profile`]): it runs
    /// the step, so the cache row at `pos` is rewritten.
    pub async fn profile_step(&self, pos: usize) -> Result<Vec<DispatchTime>> {
        self.check_room(pos, 1)?;
        self.plan.set_step(&self.gpu, pos as u32);
        self.plan.profile(&self.gpu).await
    }

    fn check_room(&self, pos: usize, steps: usize) -> Result<()> {
        if pos + steps * self.shape.tokens > self.shape.capacity {
            return Err(Error::invalid(format!(
                "decoder position {pos} + {} tokens exceeds the cache of {}",
                steps * self.shape.tokens,
                self.shape.capacity
            )));
        }
        Ok(())
    }

    fn submit(&self, pos: usize) -> Result<wgpu::CommandEncoder> {
        self.check_room(pos, 1)?;
        self.plan.set_step(&self.gpu, pos as u32);
        let mut encoder = self.gpu.encoder();
        self.plan.encode(&mut encoder);
        Ok(encoder)
    }

    /// A self-feeding decoder runs `count` steps from `pos` tokens cached, each fed the
    /// previous step's choice on the GPU, in one submission, and reads back only their ids:
    /// one list per step (run-ahead: one round trip for `count` tokens).
    pub async fn steps(&self, pos: usize, count: usize) -> Result<Vec<Vec<u32>>> {
        self.submit_steps(pos, count)?;
        self.read_steps(count).await
    }

    /// The first half of [`Decoder::steps`]: records and submits the steps without waiting
    /// for them (the benchmark times the halves apart).
    pub fn submit_steps(&self, pos: usize, count: usize) -> Result<()> {
        let history = self.history()?;
        self.check_room(pos, count)?;
        let row_bytes = (self.shape.rows() * 4) as u64;
        let mut encoder = self.gpu.encoder();
        self.plan
            .encode_steps(&self.gpu, &mut encoder, pos as u32, count, |i, encoder| {
                let at = i as u64 * row_bytes;
                encoder.copy_buffer_to_buffer(
                    &self.ids.buffer,
                    0,
                    &history.ids.buffer,
                    at,
                    row_bytes,
                );
            })?;
        let len = count as u64 * row_bytes;
        self.gpu
            .submit_readback(encoder, &history.ids.buffer, &history.staging, len)
    }

    /// The second half: waits for the `count` steps submitted last and returns their ids.
    pub async fn read_steps(&self, count: usize) -> Result<Vec<Vec<u32>>> {
        let history = self.history()?;
        if !(1..=MAX_STEPS_PER_SUBMIT).contains(&count) {
            return Err(Error::invalid(format!(
                "{count} steps in one readback (1 to {MAX_STEPS_PER_SUBMIT})"
            )));
        }
        let len = (count * self.shape.rows() * 4) as u64;
        let bytes = self.gpu.read_staging(&history.staging, len).await?;
        let ids: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(ids.chunks(self.shape.rows()).map(<[u32]>::to_vec).collect())
    }

    fn history(&self) -> Result<&History> {
        self.history
            .as_ref()
            .ok_or_else(|| Error::invalid("this decoder does not feed itself"))
    }

    /// Beam search: runs one step from the running beams' `scores` (input by input, beam by
    /// beam) and returns each input's best continuations as (score, beam * vocab + token),
    /// best first.
    pub async fn step_candidates(
        &self,
        pos: usize,
        scores: &[f32],
    ) -> Result<Vec<Vec<(f32, usize)>>> {
        let Some(beam) = &self.beam else {
            return Err(Error::invalid("this decoder does not score beams"));
        };
        if scores.len() != self.shape.sequences {
            return Err(Error::invalid(format!(
                "{} beam scores for {} sequences",
                scores.len(),
                self.shape.sequences
            )));
        }
        self.gpu
            .queue
            .write_buffer(&beam.scores.buffer, 0, bytemuck::cast_slice(scores));
        let encoder = self.submit(pos)?;
        let len = (beam.candidates.len() * 4) as u64;
        let bytes = (self.gpu)
            .submit_and_read(encoder, &beam.candidates.buffer, &beam.staging, len)
            .await?;
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        let pairs = words
            .chunks(2)
            .map(|p| (f32::from_bits(p[0]), p[1] as usize));
        let pairs: Vec<(f32, usize)> = pairs.collect();
        Ok(pairs.chunks(beam.keep).map(<[_]>::to_vec).collect())
    }

    /// Runs one step and returns the logits [sequences * tokens, vocab] (logits processors,
    /// sampling and beam search work on them), for a decoder built with `Choice::Logits`.
    pub async fn step_logits(&self, pos: usize) -> Result<Vec<f32>> {
        let Some(staging) = &self.logits_staging else {
            return Err(Error::invalid(
                "this decoder chooses on the GPU and does not read back logits",
            ));
        };
        let encoder = self.submit(pos)?;
        let len = (self.logits.len() * 4) as u64;
        let bytes = (self.gpu)
            .submit_and_read(encoder, &self.logits.buffer, staging, len)
            .await?;
        let logits: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        let Some(list) = &self.shortlist else {
            return Ok(logits);
        };
        // Words outside the shortlist cannot be chosen: -inf over the full vocabulary.
        let mut full = vec![f32::NEG_INFINITY; self.shape.rows() * self.vocab];
        for (row, values) in logits.chunks(list.len()).enumerate() {
            for (&id, &value) in list.iter().zip(values) {
                full[row * self.vocab + id as usize] = value;
            }
        }
        Ok(full)
    }
}
