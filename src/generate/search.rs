//! The decoding loop over a batch: greedy or sampled (one sequence per input) and beam
//! search, on top of the recorded decoder. Greedy decoding and sampling whose only logits
//! processors are the sampling warpers pick tokens on the GPU, run several steps per
//! submission and read back only their ids, once for all of them (steps after every
//! sequence has ended are dropped). Beam search without processors reads back each input's
//! best continuations, which the GPU scores and sorts. With processors that read the
//! sequence, each step reads back the logits and chooses on the CPU exactly as
//! transformers does (a sampled token is drawn with the GPU's noise, so the seed draws the
//! same either way).

use std::collections::VecDeque;
use std::sync::Arc;

use super::beam::{BeamSearch, BeamSettings};
use super::config::GenerationConfig;
use super::processors::{self, Processors};
use super::sampling::Sampler;
use super::stopping::StoppingCriteria;
use crate::error::Result;
use crate::gpu::{Gpu, MAX_STEPS_PER_SUBMIT};
use crate::model::{Choice, Decoder, DecoderShape, Encoded, Model};
use crate::ops::{Sampling, beam_kernel_fits};
use crate::platform::entropy_seed;
use crate::tokenizer::Tokenizer;

enum Strategy {
    /// One sequence per input, chosen by argmax or sampling.
    Single {
        sequences: Vec<Vec<u32>>,
        unfinished: Vec<bool>,
        /// Rows already handed out by `take_ended`.
        reported: Vec<bool>,
        /// Each row's length when it ended (what it holds before padding), once it has.
        ended_lengths: Vec<Option<usize>>,
        sampler: Option<Sampler>,
        /// No processor needs the CPU: the decoder feeds itself its own choices.
        on_gpu: bool,
        /// Ids of the steps the GPU ran ahead, not yet taken (on_gpu).
        ready: VecDeque<Vec<u32>>,
    },
    Beam {
        search: BeamSearch,
        table: Vec<u32>,
        /// No processors: the GPU scores the beams and sends back the best continuations.
        on_gpu: bool,
    },
}

pub struct Search {
    // The decoder reads the encoder's buffers, so it is dropped first.
    decoder: Decoder,
    _encoded: Encoded,
    config: GenerationConfig,
    processors: Processors,
    stopping: StoppingCriteria,
    /// Longest decoder sequence of each decoded sequence (the input's length can bound it).
    max_lengths: Vec<usize>,
    strategy: Strategy,
    vocab: usize,
    /// Greedy steps per submission and readback (on_gpu).
    run_ahead: usize,
    done: bool,
}

/// Greedy steps per submission and readback, unless the device was asked for a number. A
/// GPU's round trip (a browser's `mapAsync` above all) costs more than a step of a small
/// model, so 16; for a large model a step costs more, and so do the steps run past the
/// end of a sequence, so 8. A CPU adapter (lavapipe, SwiftShader) spends nearly all of a
/// step computing and almost nothing on the round trip, so steps run ahead only waste:
/// measured on SwiftShader in Chromium, 7 tokens of t5-tiny took 25% longer 8 at a time
/// than one at a time; there the engine runs one.
pub fn run_ahead_steps(gpu: &Gpu, model: &Model) -> usize {
    match gpu.run_ahead_steps() {
        Some(steps) => steps,
        None if gpu.is_software() => 1,
        None if model.spec.decoder.width >= 1024 => 8,
        None => MAX_STEPS_PER_SUBMIT,
    }
}

impl Search {
    pub fn new(
        gpu: &Arc<Gpu>,
        model: &Model,
        inputs: &[Vec<u32>],
        config: GenerationConfig,
    ) -> Result<Search> {
        let batch = inputs.len();
        let beams = config.num_beams;
        // Sampling several sequences per input decodes each input that many times.
        let repeat = if beams == 1 {
            config.num_return_sequences
        } else {
            1
        };
        let encoded = if repeat > 1 {
            let repeated: Vec<Vec<u32>> = inputs
                .iter()
                .flat_map(|input| std::iter::repeat_n(input.clone(), repeat))
                .collect();
            model.encode_batch(gpu, &repeated)?
        } else {
            model.encode_batch(gpu, inputs)?
        };
        let processors = Processors::new(&config);
        let seed = config.seed.unwrap_or_else(entropy_seed);
        let max_lengths: Vec<usize> = encoded
            .source_ids
            .iter()
            .flat_map(|input| std::iter::repeat_n(config.max_length_for(input.len()), beams))
            .collect();
        let longest = max_lengths.iter().copied().max().unwrap_or(1);
        let start = config.decoder_start_token_id;
        let beam_search = (beams > 1).then(|| {
            let settings = BeamSettings {
                num_beams: beams,
                vocab: model.spec.vocab_size,
                max_length: longest,
                length_penalty: config.length_penalty,
                early_stopping: config.early_stopping,
                eos_count: config.eos_token_ids.len(),
            };
            BeamSearch::new(settings, batch, start)
        });
        let choice = match &beam_search {
            // Beams are scored on the GPU without processors, up to the kernel's sizes.
            Some(search) => {
                let keep = search.keep();
                let fits = beam_kernel_fits(beams, keep, model.spec.vocab_size);
                match processors.is_empty() && fits {
                    true => Choice::BeamCandidates { keep },
                    false => Choice::Logits,
                }
            }
            None if !processors.all_on_gpu() => Choice::Logits,
            None if config.do_sample => Choice::Sample(Sampling {
                temperature: config.temperature,
                top_k: config.top_k,
                top_p: config.top_p,
                seed,
            }),
            None => Choice::Argmax,
        };
        let shape = DecoderShape {
            sequences: encoded.batch * beams,
            beams,
            tokens: 1,
            capacity: (longest - 1).max(1),
        };
        let decoder = model.decoder(gpu, &encoded, shape, choice)?;
        decoder.set_ids(&vec![start; shape.sequences])?;
        let strategy = match beam_search {
            Some(search) => Strategy::Beam {
                search,
                table: decoder.initial_table(),
                on_gpu: choice != Choice::Logits,
            },
            None => Strategy::Single {
                sequences: vec![vec![start]; shape.sequences],
                unfinished: vec![true; shape.sequences],
                reported: vec![false; shape.sequences],
                ended_lengths: vec![None; shape.sequences],
                sampler: config.do_sample.then(|| Sampler::new(seed)),
                on_gpu: choice.feeds_itself(),
                ready: VecDeque::new(),
            },
        };
        Ok(Search {
            run_ahead: run_ahead_steps(gpu, model),
            decoder,
            _encoded: encoded,
            vocab: model.spec.vocab_size,
            done: longest <= 1,
            max_lengths,
            processors,
            stopping: StoppingCriteria::new(&config),
            config,
            strategy,
        })
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Greedy or sampled sequences that ended since the last call, as (row, sequence): each
    /// is final, without the padding its row receives afterwards. Beam search's sequences
    /// are only known at the end ([`Search::into_sequences`]).
    pub fn take_ended(&mut self) -> Vec<(usize, Vec<u32>)> {
        let Strategy::Single {
            sequences,
            unfinished,
            reported,
            ..
        } = &mut self.strategy
        else {
            return Vec::new();
        };
        let mut ended = Vec::new();
        for (row, (open, seen)) in unfinished.iter().zip(reported.iter_mut()).enumerate() {
            if !open && !*seen {
                *seen = true;
                ended.push((row, sequences[row].clone()));
            }
        }
        ended
    }

    /// One decode step. Returns the token appended to each sequence (greedy or sampled), or
    /// nothing for beam search, whose sequences are only known at the end.
    pub async fn step(&mut self, tokenizer: &Tokenizer) -> Result<Option<Vec<u32>>> {
        if self.done {
            return Ok(None);
        }
        let config = &self.config;
        let processors = &self.processors;
        let stopping = &self.stopping;
        let vocab = self.vocab;
        match &mut self.strategy {
            Strategy::Single {
                sequences,
                unfinished,
                sampler,
                on_gpu,
                ready,
                ended_lengths,
                ..
            } => {
                let pos = sequences[0].len() - 1;
                let chosen = if *on_gpu {
                    if ready.is_empty() {
                        // Steps past the longest allowed sequence are never needed.
                        let longest = self.max_lengths.iter().copied().max().unwrap_or(1);
                        let count = self.run_ahead.min(longest - sequences[0].len()).max(1);
                        ready.extend(self.decoder.steps(pos, count).await?);
                    }
                    ready.pop_front().expect("at least one step ran")
                } else {
                    let mut logits = self.decoder.step_logits(pos).await?;
                    let mut tokens = Vec::with_capacity(sequences.len());
                    let rows = logits.chunks_mut(vocab).zip(sequences.iter());
                    for (r, (row, sequence)) in rows.enumerate() {
                        processors.apply(sequence, row);
                        tokens.push(match sampler {
                            Some(sampler) => sampler.sample(row, r, pos),
                            None => processors::argmax(row),
                        });
                    }
                    tokens
                };
                // Finished sequences continue with padding, as transformers pads them.
                let appended: Vec<u32> = chosen
                    .iter()
                    .zip(unfinished.iter())
                    .map(|(&t, &open)| if open { t } else { config.pad_token_id })
                    .collect();
                for ((((sequence, open), &token), &limit), ended) in sequences
                    .iter_mut()
                    .zip(unfinished.iter_mut())
                    .zip(&appended)
                    .zip(&self.max_lengths)
                    .zip(ended_lengths.iter_mut())
                {
                    sequence.push(token);
                    if *open && stopping.stops(tokenizer, sequence, limit) {
                        *open = false;
                        *ended = Some(sequence.len());
                    }
                }
                self.done = !unfinished.iter().any(|&u| u);
                if !*on_gpu && !self.done {
                    self.decoder.set_ids(&appended)?;
                }
                Ok(Some(appended))
            }
            Strategy::Beam {
                search,
                table,
                on_gpu,
            } => {
                let pos = search.running().next().map_or(1, Vec::len) - 1;
                let longest = self.max_lengths.iter().copied().max().unwrap_or(1);
                let stops = |s: &[u32]| stopping.stops(tokenizer, s, longest);
                let sources = if *on_gpu {
                    let best = (self.decoder)
                        .step_candidates(pos, &search.running_scores())
                        .await?;
                    search.step_candidates(&best, stops)
                } else {
                    let mut log_probs = self.decoder.step_logits(pos).await?;
                    for (row, sequence) in log_probs.chunks_mut(vocab).zip(search.running()) {
                        processors::log_softmax(row);
                        processors.apply(sequence, row);
                    }
                    search.step(&log_probs, stops)
                };
                self.done = search.is_done();
                if !self.done {
                    self.decoder.reorder(table, &sources, pos + 1)?;
                    let last: Vec<u32> = search.running().map(|s| s[s.len() - 1]).collect();
                    self.decoder.set_ids(&last)?;
                }
                Ok(None)
            }
        }
    }

    /// Every returned sequence, transformers' layout: inputs in order, each with its
    /// `num_return_sequences` sequences, padded to one length.
    pub fn into_sequences(self) -> Vec<Vec<u32>> {
        let fill = self.beam_fill();
        match self.strategy {
            Strategy::Single { sequences, .. } => sequences,
            Strategy::Beam { search, .. } => search.finish(self.config.num_return_sequences, fill),
        }
    }

    /// Each input's `num_return_sequences` sequences, padded to that input's longest only:
    /// what generating the input alone returns.
    pub fn into_sequences_by_input(self) -> Vec<Vec<Vec<u32>>> {
        let fill = self.beam_fill();
        let per_input = self.config.num_return_sequences;
        match self.strategy {
            Strategy::Single {
                sequences,
                ended_lengths,
                ..
            } => {
                let rows = sequences.into_iter().zip(ended_lengths);
                let rows: Vec<(Vec<u32>, Option<usize>)> = rows.collect();
                (rows.chunks(per_input))
                    .map(|group| {
                        let longest = (group.iter())
                            .map(|(s, ended)| ended.unwrap_or(s.len()))
                            .max()
                            .unwrap_or(0);
                        (group.iter())
                            .map(|(s, _)| s[..longest.min(s.len())].to_vec())
                            .collect()
                    })
                    .collect()
            }
            Strategy::Beam { search, .. } => search.finish_by_input(per_input, fill),
        }
    }

    /// What pads a finished beam: transformers fills with the pad token, or EOS when the pad
    /// id is 0 (falsy).
    fn beam_fill(&self) -> u32 {
        match self.config.pad_token_id {
            0 => self.config.eos_token_ids[0],
            pad => pad,
        }
    }
}
