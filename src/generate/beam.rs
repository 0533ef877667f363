//! Beam search as transformers 5 runs it (`_beam_search`): per input, keep the best
//! 2 x num_beams continuations of the running beams, move those that end into a list of
//! num_beams finished hypotheses scored with the length penalty, continue with the best
//! num_beams that did not end, and stop by the same heuristics. Scores are f32 as in torch.

use super::options::EarlyStopping;

/// The large negative transformers adds to rule a candidate out.
const OUT: f32 = -1.0e9;

pub struct BeamSettings {
    pub num_beams: usize,
    pub vocab: usize,
    pub max_length: usize,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    pub eos_count: usize,
}

struct Item {
    running: Vec<Vec<u32>>,
    running_scores: Vec<f32>,
    finished: Vec<Vec<u32>>,
    finished_scores: Vec<f32>,
    is_finished: Vec<bool>,
    improvable: bool,
}

pub struct BeamSearch {
    settings: BeamSettings,
    items: Vec<Item>,
    /// Length of the running sequences (decoder start token included).
    cur_len: usize,
    done: bool,
}

/// Indices of the `k` largest values, largest first; the lower index first on ties.
fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    let by_value = |a: &usize, b: &usize| values[*b].total_cmp(&values[*a]).then(a.cmp(b));
    let k = k.min(order.len());
    if k < order.len() {
        order.select_nth_unstable_by(k, by_value);
        order.truncate(k);
    }
    order.sort_by(by_value);
    order
}

impl BeamSearch {
    pub fn new(settings: BeamSettings, batch: usize, start: u32) -> Self {
        let nb = settings.num_beams;
        let item = || Item {
            running: vec![vec![start]; nb],
            running_scores: (0..nb).map(|i| if i == 0 { 0.0 } else { OUT }).collect(),
            finished: vec![vec![start]; nb],
            finished_scores: vec![OUT; nb],
            is_finished: vec![false; nb],
            improvable: true,
        };
        BeamSearch {
            items: (0..batch).map(|_| item()).collect(),
            settings,
            cur_len: 1,
            done: false,
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The running sequences, input by input and beam by beam.
    pub fn running(&self) -> impl Iterator<Item = &Vec<u32>> {
        self.items.iter().flat_map(|item| item.running.iter())
    }

    /// How many continuations of each input a step considers: 2 x num_beams, more with
    /// several EOS tokens, as transformers keeps them.
    pub fn keep(&self) -> usize {
        (1 + self.settings.eos_count).max(2) * self.settings.num_beams
    }

    /// The running beams' scores, input by input and beam by beam.
    pub fn running_scores(&self) -> Vec<f32> {
        let scores = self
            .items
            .iter()
            .flat_map(|item| item.running_scores.iter());
        scores.copied().collect()
    }

    /// One step over processed log-probabilities [batch * num_beams, vocab]; `stops` tells
    /// whether a sequence hits a stopping criterion. Returns, for each new running
    /// sequence, the (global) index of the sequence it continues.
    pub fn step(&mut self, log_probs: &[f32], stops: impl Fn(&[u32]) -> bool) -> Vec<usize> {
        let (nb, vocab, keep) = (self.settings.num_beams, self.settings.vocab, self.keep());
        let candidates: Vec<Vec<(f32, usize)>> = (self.items.iter().enumerate())
            .map(|(b, item)| {
                let mut accumulated = Vec::with_capacity(nb * vocab);
                for (i, score) in item.running_scores.iter().enumerate() {
                    let row = &log_probs[(b * nb + i) * vocab..][..vocab];
                    accumulated.extend(row.iter().map(|lp| lp + score));
                }
                let best = top_k(&accumulated, keep).into_iter();
                best.map(|index| (accumulated[index], index)).collect()
            })
            .collect();
        self.step_candidates(&candidates, stops)
    }

    /// The same step from each input's best `keep` continuations of its running beams, as
    /// (score, beam * vocab + token), best first and the lower index first on ties (what
    /// the GPU's beam kernel finds).
    pub fn step_candidates(
        &mut self,
        best: &[Vec<(f32, usize)>],
        stops: impl Fn(&[u32]) -> bool,
    ) -> Vec<usize> {
        let BeamSettings {
            num_beams: nb,
            vocab,
            max_length,
            length_penalty,
            early_stopping,
            ..
        } = self.settings;
        let cur_len = self.cur_len;
        let mut sources = Vec::with_capacity(self.items.len() * nb);
        let mut all_stopped = true;
        for ((b, item), best) in self.items.iter_mut().enumerate().zip(best) {
            let candidates: Vec<(Vec<u32>, f32, usize, bool)> = best
                .iter()
                .map(|&(score, index)| {
                    let (beam, token) = (index / vocab, (index % vocab) as u32);
                    let mut sequence = item.running[beam].clone();
                    sequence.push(token);
                    let stop = stops(&sequence);
                    (sequence, score, beam, stop)
                })
                .collect();
            all_stopped &= candidates.iter().all(|c| c.3);

            // Beams to continue: the best that did not stop.
            let running_scores: Vec<f32> = candidates
                .iter()
                .map(|c| c.1 + if c.3 { OUT } else { 0.0 })
                .collect();
            let next = top_k(&running_scores, nb);

            // Finished hypotheses: the top num_beams candidates that stopped, length-penalised.
            let denominator = ((cur_len as f64).powf(length_penalty as f64)) as f32;
            let beams_full =
                item.is_finished.iter().all(|&f| f) && early_stopping == EarlyStopping::True;
            let mut merged_scores = item.finished_scores.clone();
            let mut merged_finished = item.is_finished.clone();
            for (k, candidate) in candidates.iter().enumerate() {
                let just_finished = candidate.3 && k < nb;
                let mut score = candidate.1 / denominator;
                score += if beams_full { OUT } else { 0.0 };
                score += if item.improvable { 0.0 } else { OUT };
                score += if just_finished { 0.0 } else { OUT };
                merged_scores.push(score);
                merged_finished.push(just_finished);
            }
            let best = top_k(&merged_scores, nb);
            let old_finished = std::mem::take(&mut item.finished);
            item.finished = best
                .iter()
                .map(|&m| {
                    if m < nb {
                        old_finished[m].clone()
                    } else {
                        candidates[m - nb].0.clone()
                    }
                })
                .collect();
            item.finished_scores = best.iter().map(|&m| merged_scores[m]).collect();
            item.is_finished = best.iter().map(|&m| merged_finished[m]).collect();

            item.running = next.iter().map(|&k| candidates[k].0.clone()).collect();
            item.running_scores = next.iter().map(|&k| running_scores[k]).collect();
            sources.extend(next.iter().map(|&k| b * nb + candidates[k].2));
        }
        self.cur_len += 1;
        for item in &mut self.items {
            let length = if early_stopping == EarlyStopping::Never && length_penalty > 0.0 {
                max_length - 1
            } else {
                self.cur_len - 1
            };
            let best_possible =
                item.running_scores[0] / ((length as f64).powf(length_penalty as f64)) as f32;
            let worst_finished = item
                .finished_scores
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min);
            let can_improve = item
                .is_finished
                .iter()
                .any(|&f| best_possible > if f { worst_finished } else { OUT });
            item.improvable &= can_improve;
        }
        let improvement_possible = self.items.iter().any(|i| i.improvable);
        let all_finished = self.items.iter().all(|i| i.is_finished.iter().all(|&f| f));
        let exists_open_beam = !(all_finished && early_stopping == EarlyStopping::True);
        self.done = !(improvement_possible && exists_open_beam && !all_stopped);
        sources
    }

    /// The best `count` finished sequences of each input, cut to the longest and padded
    /// with `fill`, as transformers returns them.
    pub fn finish(self, count: usize, fill: u32) -> Vec<Vec<u32>> {
        let all: Vec<Vec<u32>> = self.finish_by_input(count, fill).concat();
        pad_to_longest(all, fill)
    }

    /// Each input's best `count` hypotheses, padded with `fill` to that input's longest only
    /// (what the input alone gives).
    pub fn finish_by_input(self, count: usize, fill: u32) -> Vec<Vec<Vec<u32>>> {
        (self.items.into_iter())
            .map(|item| pad_to_longest(item.finished.into_iter().take(count).collect(), fill))
            .collect()
    }
}

/// Sequences padded with `fill` to the longest of them.
pub fn pad_to_longest(sequences: Vec<Vec<u32>>, fill: u32) -> Vec<Vec<u32>> {
    let length = sequences.iter().map(Vec::len).max().unwrap_or(1);
    (sequences.into_iter())
        .map(|mut s| {
            s.resize(length, fill);
            s
        })
        .collect()
}
