//! `rotary`: queries and keys of a fused QKV projection rotated by their positions (RoPE,
//! rotate-half), in place or with the keys and values appended to a ring cache; and the
//! cos/sin table against the angles computed in f64.

use crate::common::*;
use crate::{upload, zeros};
use seq2seq_gpu::ops::{self, Rotary, RotaryAppend, rotary_table};

/// x rotated as transformers' apply_rotary_pos_emb does: x * cos + rotate_half(x) * sin.
fn rotate(x: &[f32], pos: usize, theta: f32) -> Vec<f32> {
    let d = x.len();
    let half = d / 2;
    let table = rotary_table(theta, d, pos + 1);
    let (cos, sin) = table[pos * d..][..d].split_at(half);
    let mut out = vec![0.0; d];
    for i in 0..half {
        out[i] = x[i] * cos[i] - x[half + i] * sin[i];
        out[half + i] = x[half + i] * cos[i] + x[i] * sin[i];
    }
    out
}

#[test]
fn the_table_holds_the_cos_and_sin_of_each_angle() {
    let (theta, d) = (10000.0f32, 16);
    let table = rotary_table(theta, d, 300);
    for pos in [0, 1, 7, 299] {
        for i in 0..d / 2 {
            let angle = pos as f64 * (theta as f64).powf(-((2 * i) as f64) / d as f64);
            let (c, s) = (table[pos * d + i], table[pos * d + d / 2 + i]);
            assert!((c as f64 - angle.cos()).abs() < 1e-4, "cos at {pos}, {i}");
            assert!((s as f64 - angle.sin()).abs() < 1e-4, "sin at {pos}, {i}");
        }
    }
}

/// Every query and key head of every row rotated by its position (row % rows per
/// sequence, after the step's position when decoding); values untouched; and with an
/// append, the rotated keys and the values in the ring row position % capacity.
#[test]
fn queries_and_keys_rotate_by_their_positions() {
    let gpu = gpu();
    let mut rng = rng(61);
    let theta = 500.0;
    let (heads, kv_heads, dh) = (4, 2, 12);
    let (inner, kv) = (heads * dh, kv_heads * dh);
    let width = inner + 2 * kv;
    for (sequences, per_sequence, step, capacity) in [
        (1, 9, None, None),
        (2, 5, None, None),
        (3, 1, Some(6), Some(4)),
        (2, 2, Some(9), Some(3)),
    ] {
        let rows = sequences * per_sequence;
        let qkv = random_vec(&mut rng, rows * width, 1.0);
        let positions = step.unwrap_or(0) + per_sequence;
        let table = rotary_table(theta, dh, positions);
        let (qt, tt) = (
            upload(&gpu, &qkv, &[rows, width]),
            upload(&gpu, &table, &[positions, dh]),
        );
        let cache_init = capacity.map(|c| random_vec(&mut rng, sequences * c * 2 * kv, 1.0));
        let cache = cache_init
            .as_ref()
            .map(|values| upload(&gpu, values, &[values.len() / (2 * kv), 2 * kv]));
        let rotary = Rotary {
            qkv: &qt,
            table: &tt,
            heads,
            kv_heads,
            head_dim: dh,
            rows_per_sequence: per_sequence,
            from_step: step.is_some(),
            append: cache
                .as_ref()
                .zip(capacity)
                .map(|(cache, capacity)| RotaryAppend {
                    cache,
                    capacity,
                    pages: None,
                }),
        };
        run_at_step(&gpu, step.unwrap_or(0) as u32, |rec| {
            ops::rotary(rec, rotary)
        });
        let mut expected = qkv.clone();
        let mut expected_cache = cache_init.clone();
        for r in 0..rows {
            let pos = step.unwrap_or(0) + r % per_sequence;
            let row = &mut expected[r * width..(r + 1) * width];
            for h in 0..heads {
                let rotated = rotate(&row[h * dh..(h + 1) * dh], pos, theta);
                row[h * dh..(h + 1) * dh].copy_from_slice(&rotated);
            }
            for h in 0..kv_heads {
                let at = inner + h * dh;
                let rotated = rotate(&row[at..at + dh], pos, theta);
                match (&mut expected_cache, capacity) {
                    (Some(cache), Some(c)) => {
                        let slot = ((r / per_sequence) * c + pos % c) * 2 * kv;
                        cache[slot + h * dh..][..dh].copy_from_slice(&rotated);
                        cache[slot + kv..][..kv].copy_from_slice(&row[inner + kv..inner + 2 * kv]);
                    }
                    _ => row[at..at + dh].copy_from_slice(&rotated),
                }
            }
        }
        let what =
            format!("{sequences} sequences of {per_sequence}, step {step:?}, ring {capacity:?}");
        assert_close(&read(&gpu, &qt), &expected, 1e-6, &what);
        if let (Some(cache), Some(want)) = (&cache, &expected_cache) {
            assert_close(&read(&gpu, cache), want, 1e-6, &format!("{what}: cache"));
        }
    }
}

/// Shapes the kernel cannot take are refused.
#[test]
fn rotary_refuses_mismatched_shapes() {
    let gpu = gpu();
    let (heads, kv_heads, dh) = (2, 1, 8);
    let qkv = zeros(&gpu, &[4, (heads + 2 * kv_heads) * dh]);
    let table = zeros(&gpu, &[4, dh]);
    let ok = Rotary {
        qkv: &qkv,
        table: &table,
        heads,
        kv_heads,
        head_dim: dh,
        rows_per_sequence: 4,
        from_step: false,
        append: None,
    };
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    assert!(ops::rotary(&mut rec, ok).is_ok());
    let odd = zeros(&gpu, &[4, 4 * 7]);
    for bad in [
        Rotary { kv_heads: 2, ..ok },
        Rotary {
            rows_per_sequence: 3,
            ..ok
        },
        Rotary {
            rows_per_sequence: 5,
            ..ok
        },
        Rotary {
            qkv: &odd,
            head_dim: 7,
            ..ok
        },
    ] {
        assert!(ops::rotary(&mut rec, bad).is_err());
    }
    let small_ring = zeros(&gpu, &[3, 2 * kv_heads * dh]);
    let append = RotaryAppend {
        cache: &small_ring,
        capacity: 3,
        pages: None,
    };
    assert!(
        ops::rotary(
            &mut rec,
            Rotary {
                append: Some(append),
                ..ok
            }
        )
        .is_err()
    );
}
