//! Many inputs in one call (a document's lines or sentences): inputs are read as they are
//! needed and decoded up to B rows at a time, and each result is handed out as soon as its
//! input has ended, with the input's index. Every output is what generating that input
//! alone gives: batches pad and mask as transformers does, and with a shortlist each row
//! chooses among its own input's words only.
//!
//! Greedy decoding without CPU-side processors is batched continuously
//! ([`crate::generate::continuous`]): when a row ends, the next waiting inputs are encoded
//! together (grouped by length) and take the free rows at the next step. Other settings
//! (beams, sampling, processors) decode static batches of similar lengths: a row that ends
//! is delivered at once but its row idles until its batch's longest ends.

mod grouping;
pub mod sentences;

use std::collections::{HashMap, VecDeque};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::generate::continuous::Continuous;
use crate::generate::search::Search;
use crate::generate::{Generated, GenerationConfig, GenerationOptions};
use crate::gpu::kernel::MAX_ORIGINS;
use sentences::Sentences;

/// How many inputs decode side by side, and whether inputs are paragraphs to split.
#[derive(Clone, Debug, Default)]
pub struct ManyOptions {
    /// Rows decoded together (B); `None` chooses from the model and the adapter
    /// ([`default_batch_size`]).
    pub batch_size: Option<usize>,
    /// Each input is split into sentences, which are generated one by one and joined back
    /// with the input's own spacing and line breaks.
    pub split_sentences: bool,
    /// How rows are batched.
    pub batching: Batching,
    /// Continuous batching: blocks of 16 positions in each layer's paged self-attention
    /// cache, shared by all rows; `None` gives each of the B rows half of its longest
    /// output, in whole blocks (rows that find the pool empty are preempted and decoded
    /// again later).
    pub cache_blocks: Option<usize>,
}

/// How a document's inputs share the rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Batching {
    /// Continuous batching where it applies (greedy, no CPU-side processor), unless the
    /// model has a shortlist: a continuous decoder computes every word's logit, since its
    /// rows' shortlists change as inputs come and go, and on CPU adapters that costs more
    /// than continuous batching saves (BENCHMARKS.md, 2026-12-07); static batches of the
    /// union of their inputs' shortlists then.
    #[default]
    Auto,
    /// Continuous batching where it applies, shortlist or not.
    Continuous,
    /// Static batches of similar lengths.
    Static,
}

/// One input's outcome, once it has ended.
#[derive(Debug)]
pub struct Finished {
    /// The input's position among the inputs, from 0.
    pub index: usize,
    /// Its returned sequences (the best first), or why it could not be generated (a bad
    /// input does not stop the others). A blank input gives one empty text with no ids,
    /// as marian-decoder gives an empty line; with `split_sentences` the text is the
    /// joined translations and `ids` the sentences' sequences one after another.
    pub results: Result<Vec<Generated>>,
}

/// Rows a batch decodes by default: what a GPU runs well side by side, fewer on a CPU
/// adapter (whose steps cost in proportion to the rows), and no more than a quarter of
/// the largest buffer holds in one layer's self-attention cache at the model's longest
/// generation.
pub fn default_batch_size(engine: &Engine) -> usize {
    let preferred = if engine.gpu().is_software() { 8 } else { 32 };
    let stack = &engine.model().spec.decoder;
    let longest = (engine.generation_defaults().max_length)
        .unwrap_or(512)
        .clamp(1, 4096);
    let row_bytes = (2 * stack.kv_dim() * 4 * longest) as u64;
    let fits = engine.gpu().max_buffer_bytes() / 4 / row_bytes.max(1);
    preferred.min(fits as usize).max(1)
}

/// The most blocks a paged cache pool takes (16 positions each).
pub const MAX_CACHE_BLOCKS: usize = 1 << 24;

/// A piece of an input generated as one row: the input, or one of its sentences.
struct Unit {
    input: usize,
    part: usize,
    ids: Vec<u32>,
}

/// An input not yet handed out: its parts' results as they end.
struct Pending {
    index: usize,
    sentences: Option<Sentences>,
    parts: Vec<Option<Vec<Generated>>>,
    failed: Option<Error>,
}

/// The batch decoding now.
struct Running {
    search: Search,
    units: Vec<Unit>,
    delivered: Vec<bool>,
}

/// Generation over many inputs; `next` yields each input's results as it ends.
pub struct ManyGeneration<I> {
    engine: Engine,
    inputs: I,
    exhausted: bool,
    options: GenerationOptions,
    config: GenerationConfig,
    split: bool,
    batch: usize,
    cache_blocks: Option<usize>,
    /// Inputs read ahead of the batch, for grouping by length.
    lookahead: usize,
    next_index: usize,
    waiting: Vec<Unit>,
    pending: VecDeque<Pending>,
    running: Option<Running>,
    /// Continuous batching, where it applies: the rows, and the (input, part) each decodes.
    rolling: Option<Continuous>,
    continuous: bool,
    tags: HashMap<usize, (usize, usize)>,
    next_tag: usize,
    ready: VecDeque<Finished>,
    failed: bool,
    /// Decode steps run so far (each over all rows of its batch).
    decode_steps: usize,
    /// Inputs preempted for want of cache blocks (and decoded again).
    preempted: usize,
}

impl Engine {
    /// Starts generating for many inputs (read from `inputs` as the batches need them);
    /// poll the result's `next` for each input's results as it ends.
    pub fn generate_many<I: IntoIterator<Item = String>>(
        &self,
        inputs: I,
        options: &GenerationOptions,
        many: &ManyOptions,
    ) -> Result<ManyGeneration<I::IntoIter>> {
        let config = self.resolve(options)?;
        if many.split_sentences && config.num_return_sequences != 1 {
            return Err(Error::invalid(
                "split_sentences joins one sequence per sentence: num_return_sequences must be 1",
            ));
        }
        if many
            .cache_blocks
            .is_some_and(|b| b == 0 || b > MAX_CACHE_BLOCKS)
        {
            return Err(Error::invalid(format!(
                "cache_blocks must be from 1 to {MAX_CACHE_BLOCKS}"
            )));
        }
        let batch = match many.batch_size {
            Some(0) => return Err(Error::invalid("batch_size must be at least 1")),
            Some(b) => b,
            None => default_batch_size(self),
        };
        Ok(ManyGeneration {
            engine: self.clone(),
            inputs: inputs.into_iter(),
            exhausted: false,
            options: options.clone(),
            split: many.split_sentences,
            batch,
            cache_blocks: many.cache_blocks,
            lookahead: batch.saturating_mul(4),
            next_index: 0,
            waiting: Vec::new(),
            pending: VecDeque::new(),
            running: None,
            rolling: None,
            continuous: batch <= MAX_ORIGINS
                && Continuous::supports(&config)
                && match many.batching {
                    Batching::Auto => self.model().shortlist.is_none(),
                    Batching::Continuous => true,
                    Batching::Static => false,
                },
            tags: HashMap::new(),
            next_tag: 0,
            ready: VecDeque::new(),
            failed: false,
            decode_steps: 0,
            preempted: 0,
            config,
        })
    }
}

impl<I: Iterator<Item = String>> ManyGeneration<I> {
    /// Rows decoded side by side.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// Decode steps run so far, each over every row of its batch.
    pub fn decode_steps(&self) -> usize {
        self.decode_steps
    }

    /// Inputs that were preempted (their rows' cache blocks went to older rows when the
    /// pool ran out) and decoded again from the start.
    pub fn preempted(&self) -> usize {
        self.preempted
    }

    /// The next input to end, or `None` once every input has. An error here (the device
    /// failed) ends the generation; inputs already handed out stay valid.
    pub async fn next(&mut self) -> Option<Result<Finished>> {
        loop {
            if let Some(finished) = self.ready.pop_front() {
                return Some(Ok(finished));
            }
            if self.failed {
                return None;
            }
            match self.advance().await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    self.running = None;
                    return Some(Err(e));
                }
            }
        }
    }

    /// Reads inputs, starts a batch or runs one step of it; false once nothing is left.
    async fn advance(&mut self) -> Result<bool> {
        self.read_ahead();
        if self.continuous {
            return self.advance_rows().await;
        }
        if self.running.is_none() {
            if self.waiting.is_empty() {
                return Ok(!self.ready.is_empty());
            }
            self.start_batch()?;
        }
        let running = self.running.as_mut().expect("started above");
        if !running.search.is_done() {
            running.search.step(self.engine.tokenizer()).await?;
            self.decode_steps += 1;
        }
        let mut ended = Vec::new();
        if self.config.num_beams == 1 && self.config.num_return_sequences == 1 {
            for (row, ids) in running.search.take_ended() {
                running.delivered[row] = true;
                ended.push((running.units[row].input, running.units[row].part, ids));
            }
        }
        let done = running.search.is_done();
        for (input, part, ids) in ended {
            let generated = self.generated(ids)?;
            self.complete(input, part, vec![generated]);
        }
        if done {
            let Running {
                search,
                units,
                delivered,
            } = self.running.take().expect("checked above");
            let sequences = search.into_sequences_by_input();
            for ((unit, done), ids) in units.iter().zip(delivered).zip(sequences) {
                if !done {
                    let results = (ids.into_iter())
                        .map(|ids| self.generated(ids))
                        .collect::<Result<Vec<_>>>()?;
                    self.complete(unit.input, unit.part, results);
                }
            }
        }
        Ok(true)
    }

    /// Continuous batching: fills free rows with waiting inputs that fit them, then runs the
    /// next steps; rows are rebuilt for longer inputs once none fits and every row is idle.
    async fn advance_rows(&mut self) -> Result<bool> {
        let engine = self.engine.clone();
        let rolling = match &mut self.rolling {
            Some(rolling) => rolling,
            None if self.waiting.is_empty() => return Ok(!self.ready.is_empty()),
            None => {
                let longest = self.waiting.iter().map(|u| u.ids.len()).max().unwrap_or(1);
                let limit = engine.model().max_decoder_positions().unwrap_or(usize::MAX);
                // Room for somewhat longer inputs than those at hand.
                let source_len = longest.next_multiple_of(16).min(limit).max(longest);
                let rows = Continuous::new(
                    engine.gpu(),
                    engine.model(),
                    self.config.clone(),
                    self.batch,
                    source_len,
                    self.cache_blocks,
                )?;
                self.rolling.insert(rows)
            }
        };
        let fitting: Vec<usize> = (self.waiting.iter().enumerate())
            .filter(|(_, u)| u.ids.len() <= rolling.source_len())
            .map(|(i, _)| i)
            .collect();
        let free = rolling.room();
        // The oldest waiting input must not wait behind shorter ones for ever: while it
        // does not fit the rows, they take nothing new and drain, to be rebuilt for it.
        let oldest_fits =
            (self.waiting.first()).is_none_or(|u| u.ids.len() <= rolling.source_len());
        if free > 0 && !fitting.is_empty() && oldest_fits {
            let lengths: Vec<usize> = fitting.iter().map(|&i| self.waiting[i].ids.len()).collect();
            let chosen: Vec<usize> = (grouping::next_group(&lengths, free).into_iter())
                .map(|g| fitting[g])
                .collect();
            let mut picked: Vec<Option<Unit>> = self.waiting.drain(..).map(Some).collect();
            let mut admitted = Vec::with_capacity(chosen.len());
            for i in chosen {
                if let Some(unit) = picked[i].take() {
                    self.tags.insert(self.next_tag, (unit.input, unit.part));
                    admitted.push((self.next_tag, unit.ids));
                    self.next_tag += 1;
                }
            }
            self.waiting = picked.into_iter().flatten().collect();
            rolling.admit(engine.model(), admitted)?;
        }
        if !rolling.has_work() {
            // Idle: every input is done, or the waiting ones need longer rows.
            self.rolling = None;
            return Ok(!self.waiting.is_empty() || !self.ready.is_empty());
        }
        let stepped = rolling.step(engine.tokenizer()).await?;
        self.decode_steps += stepped.steps;
        for (tag, ids) in stepped.preempted {
            self.preempted += 1;
            if let Some((input, part)) = self.tags.remove(&tag) {
                // Back in arrival order: the oldest waiting input comes first.
                let at = (self.waiting).partition_point(|u| (u.input, u.part) < (input, part));
                self.waiting.insert(at, Unit { input, part, ids });
            }
        }
        for (tag, ids) in stepped.ended {
            if let Some((input, part)) = self.tags.remove(&tag) {
                let generated = self.generated(ids)?;
                self.complete(input, part, vec![generated]);
            }
        }
        Ok(true)
    }

    fn generated(&self, ids: Vec<u32>) -> Result<Generated> {
        Ok(Generated {
            text: self.engine.tokenizer().decode(&ids)?,
            ids,
        })
    }

    /// Reads inputs until enough wait to group them by length.
    fn read_ahead(&mut self) {
        while !self.exhausted && self.waiting.len() < self.lookahead {
            let Some(text) = self.inputs.next() else {
                self.exhausted = true;
                break;
            };
            let index = self.next_index;
            self.next_index += 1;
            let (sentences, parts) = match self.split {
                true => {
                    let sentences = Sentences::split(&text);
                    let parts = sentences.sentences.clone();
                    (Some(sentences), parts)
                }
                false => (None, vec![text]),
            };
            let input = self.pending.len();
            self.pending.push_back(Pending {
                index,
                sentences,
                parts: vec![None; parts.len()],
                failed: None,
            });
            for (part, text) in parts.iter().enumerate() {
                if text.trim().is_empty() {
                    let empty = Generated {
                        ids: Vec::new(),
                        text: String::new(),
                    };
                    self.pending[input].parts[part] = Some(vec![empty]);
                    continue;
                }
                let ids = (self.engine.encode(text, &self.options))
                    .and_then(|ids| self.engine.prepared_input(&ids, self.config.truncation))
                    .and_then(|ids| self.placeable(ids));
                match ids {
                    Ok(ids) => self.waiting.push(Unit {
                        input: index,
                        part,
                        ids,
                    }),
                    Err(e) => {
                        self.pending[input].failed = Some(e);
                        break;
                    }
                }
            }
            if self.pending[input].failed.is_some() {
                self.waiting.retain(|unit| unit.input != index);
            }
            self.deliver();
        }
    }

    /// An input whose longest output the model cannot place fails alone, as it would
    /// alone, rather than the batch it would join.
    fn placeable(&self, ids: Vec<u32>) -> Result<Vec<u32>> {
        let positions = self.config.max_length_for(ids.len()).saturating_sub(1);
        match self.engine.model().max_decoder_positions() {
            Some(limit) if positions > limit => Err(Error::invalid(format!(
                "{positions} decoder positions requested; this model places at most {limit} (max_position_embeddings)"
            ))),
            _ => Ok(ids),
        }
    }

    fn start_batch(&mut self) -> Result<()> {
        let lengths: Vec<usize> = self.waiting.iter().map(|u| u.ids.len()).collect();
        let chosen = grouping::next_group(&lengths, self.batch);
        let mut picked: Vec<Option<Unit>> = self.waiting.drain(..).map(Some).collect();
        let units: Vec<Unit> = (chosen.iter()).filter_map(|&i| picked[i].take()).collect();
        self.waiting = picked.into_iter().flatten().collect();
        let inputs: Vec<Vec<u32>> = units.iter().map(|u| u.ids.clone()).collect();
        let engine = &self.engine;
        let search = Search::new(engine.gpu(), engine.model(), &inputs, self.config.clone())?;
        self.running = Some(Running {
            search,
            delivered: vec![false; units.len()],
            units,
        });
        Ok(())
    }

    /// Records a part's results and hands out every input that has ended.
    fn complete(&mut self, input: usize, part: usize, results: Vec<Generated>) {
        if let Some(pending) = self.pending.iter_mut().find(|p| p.index == input) {
            pending.parts[part] = Some(results);
        }
        self.deliver();
    }

    /// Moves every input whose parts have all ended to `ready`, in the order they end.
    fn deliver(&mut self) {
        let mut kept = VecDeque::with_capacity(self.pending.len());
        while let Some(pending) = self.pending.pop_front() {
            if let Some(error) = pending.failed {
                self.ready.push_back(Finished {
                    index: pending.index,
                    results: Err(error),
                });
            } else if pending.parts.iter().all(Option::is_some) {
                self.ready.push_back(assemble(pending));
            } else {
                kept.push_back(pending);
            }
        }
        self.pending = kept;
    }
}

/// An ended input's results: its one part's, or its sentences' joined.
fn assemble(pending: Pending) -> Finished {
    let mut parts: Vec<Vec<Generated>> = pending.parts.into_iter().flatten().collect();
    let results = match &pending.sentences {
        None => parts.pop().unwrap_or_default(),
        Some(sentences) => {
            let best: Vec<&Generated> = parts.iter().filter_map(|p| p.first()).collect();
            let texts: Vec<&str> = best.iter().map(|g| g.text.as_str()).collect();
            vec![Generated {
                text: sentences.join(&texts),
                ids: best.iter().flat_map(|g| g.ids.iter().copied()).collect(),
            }]
        }
    };
    Finished {
        index: pending.index,
        results: Ok(results),
    }
}
