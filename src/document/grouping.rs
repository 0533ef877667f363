//! Which waiting inputs decode together: inputs of similar lengths (a padded batch spends
//! every row's steps on the longest input, and its encoder pads to it), always including the
//! input that has waited longest, so that no input waits forever behind shorter ones.

/// Of inputs of `lengths` in arrival order, the (at most) `batch` to decode next, sorted by
/// length: the window of `batch` consecutive inputs in length order that holds the first
/// input and spans the fewest lengths.
pub fn next_group(lengths: &[usize], batch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    if order.len() <= batch {
        return order;
    }
    let oldest = order.iter().position(|&i| i == 0).unwrap_or(0);
    let first = oldest.saturating_sub(batch - 1);
    let last = oldest.min(order.len() - batch);
    let spread = |start: usize| lengths[order[start + batch - 1]] - lengths[order[start]];
    let start = (first..=last).min_by_key(|&s| spread(s)).unwrap_or(first);
    order[start..start + batch].to_vec()
}

#[cfg(test)]
mod tests {
    use super::next_group;

    #[test]
    fn takes_everything_that_fits_sorted_by_length() {
        assert_eq!(next_group(&[5, 2, 9], 4), [1, 0, 2]);
        assert!(next_group(&[], 4).is_empty());
    }

    #[test]
    fn groups_similar_lengths_around_the_oldest_input() {
        // The oldest (length 10) goes with the 9 and 11, not with the short ones.
        let lengths = [10, 1, 2, 3, 9, 11, 30, 31];
        assert_eq!(next_group(&lengths, 3), [4, 0, 5]);
        // The oldest is always in the group, even when it is the longest.
        let lengths = [50, 1, 1, 1, 1];
        let group = next_group(&lengths, 2);
        assert!(group.contains(&0), "{group:?}");
        assert_eq!(group.len(), 2);
    }
}
