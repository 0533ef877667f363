//! How the decoder's self-attention caches are laid out: each layer's rows per sequence (a
//! ring of the window's positions where the layer slides), and the row table of beam search,
//! which says for each (sequence, position) whose cache rows hold it.

use super::spec::StackSpec;
/// For each (sequence, position), the sequence whose cache rows hold it: at first its own.
pub(super) fn initial_table(sequences: usize, capacity: usize) -> Vec<u32> {
    (0..sequences as u32)
        .flat_map(|s| std::iter::repeat_n(s, capacity))
        .collect()
}

/// Each layer's cache rows per sequence: every position up to `capacity`, or where the layer
/// slides over a window, a ring of the last positions its queries see (with `tokens` fed per
/// step, the first of them still sees `window - 1` earlier ones).
pub(super) fn cache_rows(stack: &StackSpec, capacity: usize, tokens: usize) -> Vec<usize> {
    (0..stack.layers)
        .map(|l| match stack.window(l) {
            Some(window) => capacity.min(window + tokens - 1),
            None => capacity,
        })
        .collect()
}

/// Beam search: after `pos` positions, sequence s continues the history of `sources[s]`, so
/// its first `pos` entries become that sequence's (rows of `capacity` entries each).
pub(super) fn continue_histories(
    table: &mut [u32],
    sources: &[usize],
    pos: usize,
    capacity: usize,
) {
    let old = table.to_vec();
    for (s, &src) in sources.iter().enumerate() {
        table[s * capacity..s * capacity + pos]
            .copy_from_slice(&old[src * capacity..src * capacity + pos]);
    }
}
