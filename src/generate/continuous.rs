//! Continuous batching of greedy decoding: up to B rows decode side by side, each its own
//! input from its own first step; when a row ends, the next input is encoded and takes the
//! row at the next step, so no step is spent on rows whose input has ended (beyond the steps
//! run ahead of one readback). Each row's tokens are the GPU's argmax, fed to its next step
//! on the GPU, exactly as for that input alone.
//!
//! Paged caches: rows take blocks from one pool as they grow and give them back when they
//! end, so memory follows the tokens actually held, up to the pool. When the pool runs out,
//! the newest rows are preempted (vLLM's recompute preemption): their blocks go to the
//! older rows and their inputs go back to the caller, to be decoded again from the start,
//! which gives the same tokens.

use std::sync::Arc;

use super::config::GenerationConfig;
use super::processors::Processors;
use super::search::run_ahead_steps;
use super::stopping::StoppingCriteria;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::model::decoder::BLOCK_ROWS;
use crate::model::{Decoder, Encoded, Model};
use crate::tokenizer::Tokenizer;

/// The input a row decodes: the caller's tag for it, its sequence so far (decoder start
/// token first) and its length limit.
struct Row {
    tag: usize,
    input: Vec<u32>,
    sequence: Vec<u32>,
    max_length: usize,
    /// Pool blocks holding its positions, in order.
    blocks: Vec<u32>,
    /// When it was admitted (later rows are preempted first).
    admitted: usize,
}

/// What a call to [`Continuous::step`] leaves: inputs that ended (tag, sequence), inputs
/// preempted for want of cache blocks (tag, input ids) to admit again, and the steps run.
pub struct Stepped {
    pub ended: Vec<(usize, Vec<u32>)>,
    pub preempted: Vec<(usize, Vec<u32>)>,
    pub steps: usize,
}

pub struct Continuous {
    // The decoder reads the slots' buffers, so it is dropped first.
    decoder: Decoder,
    slots: Encoded,
    rows: Vec<Option<Row>>,
    /// The decode step of the next submission (rows count their positions from the step
    /// they began at).
    step: usize,
    run_ahead: usize,
    config: GenerationConfig,
    stopping: StoppingCriteria,
    /// Inputs that ended as they were admitted (a length limit of one token).
    ended: Vec<(usize, Vec<u32>)>,
    /// Cache blocks no row holds.
    free_blocks: Vec<u32>,
    admissions: usize,
    gpu: Arc<Gpu>,
}

impl Continuous {
    /// Whether generation with `config` can be batched continuously: greedy, one sequence
    /// per input, and no logits processor that needs the CPU.
    pub fn supports(config: &GenerationConfig) -> bool {
        config.num_beams == 1
            && config.num_return_sequences == 1
            && !config.do_sample
            && Processors::new(config).all_on_gpu()
    }

    /// `rows` rows for inputs of up to `source_len` tokens, with `pool_blocks` blocks of
    /// paged cache (default: half of each row's longest, rounded up to whole blocks; never
    /// less than one row at its longest, so the oldest row can always finish).
    pub fn new(
        gpu: &Arc<Gpu>,
        model: &Model,
        config: GenerationConfig,
        rows: usize,
        source_len: usize,
        pool_blocks: Option<usize>,
    ) -> Result<Continuous> {
        // Inputs whose longest output the model cannot place are refused before they come.
        let limit = model.max_decoder_positions().unwrap_or(usize::MAX);
        let capacity = (config.max_length_for(source_len).saturating_sub(1)).clamp(1, limit.max(1));
        let row_blocks = capacity.div_ceil(BLOCK_ROWS);
        let pool_blocks = pool_blocks
            .unwrap_or(rows * row_blocks.div_ceil(2))
            .max(row_blocks);
        let slots = model.encoder_slots(gpu, rows, source_len)?;
        let decoder = model.continuous_decoder(gpu, &slots, capacity, pool_blocks)?;
        Ok(Continuous {
            decoder,
            slots,
            rows: (0..rows).map(|_| None).collect(),
            step: 0,
            run_ahead: run_ahead_steps(gpu, model),
            stopping: StoppingCriteria::new(&config),
            config,
            ended: Vec::new(),
            // Block 0 is the idle rows'.
            free_blocks: (1..=pool_blocks as u32).rev().collect(),
            admissions: 0,
            gpu: gpu.clone(),
        })
    }

    /// The longest input a row takes.
    pub fn source_len(&self) -> usize {
        self.slots.source_len
    }

    pub fn free_rows(&self) -> usize {
        self.rows.iter().filter(|r| r.is_none()).count()
    }

    /// Whether a row is decoding, or an input ended as it was admitted.
    pub fn has_work(&self) -> bool {
        self.free_rows() < self.rows.len() || !self.ended.is_empty()
    }

    /// Inputs that can start now: free rows, each with a free cache block for its first
    /// steps.
    pub fn room(&self) -> usize {
        let first_steps = self.decoder.blocks_for(self.run_ahead);
        match first_steps {
            0 => self.free_rows(),
            n => self.free_rows().min(self.free_blocks.len() / n),
        }
    }

    /// Encodes `inputs` (tag, ids; at most [`Continuous::room`]) together and starts each in
    /// a free row at the next step.
    pub fn admit(&mut self, model: &Model, inputs: Vec<(usize, Vec<u32>)>) -> Result<()> {
        if inputs.is_empty() {
            return Ok(());
        }
        let ids: Vec<Vec<u32>> = inputs.iter().map(|(_, ids)| ids.clone()).collect();
        let encoded = model.encode_batch(&self.gpu, &ids)?;
        let start = self.config.decoder_start_token_id;
        let free: Vec<usize> = (self.rows.iter().enumerate())
            .filter(|(_, r)| r.is_none())
            .map(|(i, _)| i)
            .collect();
        for (i, ((tag, input), row)) in inputs.into_iter().zip(free).enumerate() {
            let max_length = self.config.max_length_for(input.len());
            if max_length <= 1 {
                self.ended.push((tag, vec![start]));
                continue;
            }
            self.slots.place(&self.gpu, row, &encoded, i)?;
            let vocabulary = model.row_vocabulary(&input)?;
            (self.decoder).begin_row(row, self.step as u32, start, vocabulary.as_deref())?;
            self.admissions += 1;
            self.rows[row] = Some(Row {
                tag,
                input,
                sequence: vec![start],
                max_length,
                blocks: Vec::new(),
                admitted: self.admissions,
            });
        }
        Ok(())
    }

    /// Runs the next steps (as many as run ahead of one readback, and no more than any row
    /// has room for): see [`Stepped`]. Rows whose input ended, or that were preempted, are
    /// free for the next inputs.
    pub async fn step(&mut self, tokenizer: &Tokenizer) -> Result<Stepped> {
        let mut stepped = Stepped {
            ended: std::mem::take(&mut self.ended),
            preempted: Vec::new(),
            steps: 0,
        };
        let room = (self.rows.iter().flatten())
            .map(|r| r.max_length - r.sequence.len())
            .min();
        let Some(room) = room else {
            return Ok(stepped);
        };
        let count = self.run_ahead.min(room).max(1);
        stepped.preempted = self.grow(count)?;
        // Idle rows restart at every call: they never leave their first block (and read no
        // more keys than the steps of one call).
        for r in 0..self.rows.len() {
            if self.rows[r].is_none() {
                self.decoder.rest_row(r, self.step as u32)?;
            }
        }
        let steps = self.decoder.steps(self.step, count).await?;
        self.step += count;
        stepped.steps = count;
        let mut done = vec![false; self.rows.len()];
        for ids in steps {
            for ((row, &id), done) in self.rows.iter_mut().zip(&ids).zip(done.iter_mut()) {
                if let Some(row) = row
                    && !*done
                {
                    row.sequence.push(id);
                    *done = (self.stopping).stops(tokenizer, &row.sequence, row.max_length);
                }
            }
        }
        for (r, done) in done.into_iter().enumerate() {
            if let Some(row) = self.rows[r].take_if(|_| done) {
                self.release(r, row.blocks)?;
                stepped.ended.push((row.tag, row.sequence));
            }
        }
        Ok(stepped)
    }

    /// Gives every row the blocks its next `count` positions need, oldest rows first;
    /// preempts the newest rows while the pool has too few. Returns the preempted inputs.
    fn grow(&mut self, count: usize) -> Result<Vec<(usize, Vec<u32>)>> {
        let mut order: Vec<usize> = (0..self.rows.len())
            .filter(|&r| self.rows[r].is_some())
            .collect();
        order.sort_by_key(|&r| self.rows[r].as_ref().map_or(0, |row| row.admitted));
        let mut preempted = Vec::new();
        for (i, &r) in order.iter().enumerate() {
            let Some(row) = &self.rows[r] else {
                continue;
            };
            let need = self.decoder.blocks_for(row.sequence.len() - 1 + count);
            let mut short = need.saturating_sub(row.blocks.len());
            // Take blocks from the newest rows until this one has enough (never from the
            // oldest, which the pool always has room for).
            let mut newest = order.len();
            while short > self.free_blocks.len() && newest > i + 1 {
                newest -= 1;
                if let Some(victim) = self.rows[order[newest]].take() {
                    self.release(order[newest], victim.blocks)?;
                    preempted.push((victim.tag, victim.input));
                }
            }
            if short > self.free_blocks.len() {
                // Only possible if this row is itself the newest: it waits for its turn.
                if let Some(victim) = self.rows[r].take() {
                    self.release(r, victim.blocks)?;
                    preempted.push((victim.tag, victim.input));
                }
                continue;
            }
            if short > 0 {
                let row = self.rows[r].as_mut().expect("checked above");
                while short > 0 {
                    row.blocks
                        .push(self.free_blocks.pop().expect("counted above"));
                    short -= 1;
                }
                self.decoder.set_row_blocks(r, &row.blocks)?;
            }
        }
        Ok(preempted)
    }

    /// Row `r` is free: its blocks go back to the pool, and it writes only block 0.
    fn release(&mut self, r: usize, blocks: Vec<u32>) -> Result<()> {
        self.free_blocks.extend(blocks);
        self.decoder.set_row_blocks(r, &[])
    }
}
