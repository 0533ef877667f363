//! Continuous batching on the model side: a greedy decoder whose rows each decode an input
//! of their own, begun at a decode step of their own, over encoder slots that take each new
//! input's encoder results ([`Model::encoder_slots`], [`Encoded::place`]). A row's position
//! is the step minus the step it began at (`Step::origins`), so rows that end hand their
//! place to the next input while the others go on, and the recorded step stays one plan.
//! Self-attention caches that keep every position are paged: each layer's keys and values
//! live in one pool of blocks of [`BLOCK_ROWS`] rows, and a row's block table says which
//! blocks hold its positions; the caller hands blocks out as rows grow and takes them back
//! when they end ([`Decoder::set_row_blocks`]). Block 0 is where idle rows write.

use std::sync::Arc;

use super::decoder::{BLOCK_ROWS, Choice, Decoder, DecoderShape};
use super::encoder::Encoded;
use super::loaded::Model;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::gpu::kernel::MAX_ORIGINS;

impl Model {
    /// A greedy decoder with one row per slot of `slots`, each with room for up to `capacity`
    /// tokens, its paged caches holding `pool_blocks` blocks in all (besides block 0); rows
    /// start with [`Decoder::begin_row`].
    pub fn continuous_decoder(
        &self,
        gpu: &Arc<Gpu>,
        slots: &Encoded,
        capacity: usize,
        pool_blocks: usize,
    ) -> Result<Decoder> {
        if slots.mask.is_none() || slots.batch > MAX_ORIGINS {
            return Err(Error::invalid(format!(
                "a continuous decoder runs on at most {MAX_ORIGINS} encoder slots (Model::encoder_slots)"
            )));
        }
        let shape = DecoderShape {
            sequences: slots.batch,
            beams: 1,
            tokens: 1,
            capacity,
        };
        self.build_decoder(gpu, slots, shape, Choice::Argmax, Some(pool_blocks))
    }
}

impl Decoder {
    /// Row `row` of a continuous decoder has no input: it restarts at decode step `origin`,
    /// where its idle steps read the fewest keys.
    pub fn rest_row(&self, row: usize, origin: u32) -> Result<()> {
        self.check_row(row)?;
        self.plan.set_origin(&self.gpu, row, origin)
    }

    /// Blocks a row needs to hold `positions` positions: none where no cache is paged (SSRU
    /// decoders, sliding windows only).
    pub fn blocks_for(&self, positions: usize) -> usize {
        match self.block_table {
            Some(_) => positions.div_ceil(BLOCK_ROWS),
            None => 0,
        }
    }

    /// Row `row`'s positions from 0 on are in `blocks` (BLOCK_ROWS each), then in block 0.
    pub fn set_row_blocks(&self, row: usize, blocks: &[u32]) -> Result<()> {
        self.check_row(row)?;
        let Some(table) = &self.block_table else {
            return match blocks.is_empty() {
                true => Ok(()),
                false => Err(Error::invalid("this decoder pages no cache")),
            };
        };
        if blocks.len() > self.blocks_per_sequence {
            return Err(Error::invalid(format!(
                "{} blocks for a row of at most {}",
                blocks.len(),
                self.blocks_per_sequence
            )));
        }
        let mut entries = blocks.to_vec();
        entries.resize(self.blocks_per_sequence, 0);
        let at = (row * self.blocks_per_sequence * 4) as u64;
        (self.gpu.queue).write_buffer(&table.buffer, at, bytemuck::cast_slice(&entries));
        Ok(())
    }

    fn check_row(&self, row: usize) -> Result<()> {
        if !self.continuous || row >= self.shape.sequences {
            return Err(Error::invalid(format!(
                "row {row} of a decoder of {} rows that {} continuous",
                self.shape.sequences,
                if self.continuous { "is" } else { "is not" }
            )));
        }
        Ok(())
    }
    /// Row `row` of a continuous decoder begins an input at decode step `origin` (its cache
    /// is empty at that step), fed `start`, choosing among `vocabulary` (see
    /// [`Model::row_vocabulary`]; every word when `None`).
    pub fn begin_row(
        &self,
        row: usize,
        origin: u32,
        start: u32,
        vocabulary: Option<&[f32]>,
    ) -> Result<()> {
        self.check_row(row)?;
        if start as usize >= self.embedding_rows {
            return Err(Error::invalid(format!(
                "token id {start} is outside the vocabulary of {}",
                self.vocab
            )));
        }
        self.plan.set_origin(&self.gpu, row, origin)?;
        let queue = &self.gpu.queue;
        queue.write_buffer(
            &self.ids.buffer,
            (row * 4) as u64,
            bytemuck::bytes_of(&start),
        );
        match (&self.shortlist_mask, vocabulary) {
            (Some(mask), Some(values)) if values.len() == self.vocab => {
                let at = (row * self.vocab * 4) as u64;
                queue.write_buffer(&mask.buffer, at, bytemuck::cast_slice(values));
                Ok(())
            }
            (None, None) => Ok(()),
            _ => Err(Error::invalid(
                "a row's vocabulary must come from Model::row_vocabulary of this model",
            )),
        }
    }
}
