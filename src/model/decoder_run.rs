//! A recorded decoder at work: its steps submitted and read back (ids, beam candidates or
//! logits), and the row table of beam search rewritten between steps.

use super::cache_layout::{continue_histories, initial_table};
use super::decoder::{Decoder, History};
use crate::error::{Error, Result};
use crate::gpu::{DispatchTime, KernelName, MAX_STEPS_PER_SUBMIT};

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

    /// Bytes of the self-attention caches (or SSRU states) of every layer: for a continuous
    /// decoder, set by its pool of blocks rather than by rows x capacity.
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes
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
        // Each row of a continuous decoder is at a position of its own; the scheduler keeps
        // each within its rows (a ring: a row past them only overwrites its own).
        if self.continuous {
            return Ok(());
        }
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
