//! T5's relative position buckets, computed on the CPU with the same f32 arithmetic as
//! transformers (`_relative_position_bucket`), so that no bucket boundary can differ.

/// The bucket of `key_pos - query_pos`.
pub fn bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> u32 {
    let mut buckets = num_buckets as i64;
    let mut result = 0i64;
    let distance = if bidirectional {
        buckets /= 2;
        if relative_position > 0 {
            result += buckets;
        }
        relative_position.abs()
    } else {
        (-relative_position).max(0)
    };
    let max_exact = buckets / 2;
    if distance < max_exact {
        result += distance;
    } else {
        let scaled = (distance as f32 / max_exact as f32).ln()
            / (max_distance as f64 / max_exact as f64).ln() as f32
            * (buckets - max_exact) as f32;
        result += (max_exact + scaled as i64).min(buckets - 1);
    }
    result as u32
}

/// Buckets of every relative position in `-(len - 1)..=(len - 1)`, indexed by
/// `relative_position + len - 1` (the attention kernel's `bias_center` is `len - 1`).
pub fn bucket_table(
    len: usize,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> Vec<u32> {
    let len = len.max(1) as i64;
    (-(len - 1)..len)
        .map(|r| bucket(r, bidirectional, num_buckets, max_distance))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_transformers_bucket_values() {
        // Values from a float32 numpy port of transformers' T5Attention._relative_position_bucket
        // (32 buckets, max distance 128).
        let bidirectional: Vec<u32> = [-200, -128, -20, -8, -7, -1, 0, 1, 7, 8, 20, 128, 200]
            .iter()
            .map(|&r| bucket(r, true, 32, 128))
            .collect();
        assert_eq!(
            bidirectional,
            vec![15, 15, 10, 8, 7, 1, 0, 17, 23, 24, 26, 31, 31]
        );
        let causal: Vec<u32> = [5, 0, -1, -15, -16, -40, -127, -1000]
            .iter()
            .map(|&r| bucket(r, false, 32, 128))
            .collect();
        assert_eq!(causal, vec![0, 0, 1, 15, 16, 23, 31, 31]);
    }
}
