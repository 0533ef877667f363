//! `attention` with what Gemma's models add: grouped-query heads (fewer key/value heads),
//! sliding windows (both sides in an encoder, before the query when causal), soft-capped
//! scores, and a decoder cache kept as a ring of the window's positions, also read through
//! a beam row table; against the dense CPU reference over full key sequences.

use crate::attention::Case;
use crate::common::reference as cpu;
use crate::common::*;

/// Encoder-style attention (every query row at once, no causality) with a window, a soft
/// cap and a padding mask, over 4 query heads sharing 2 key/value heads.
#[test]
fn windowed_grouped_attention_with_soft_caps_matches_the_reference() {
    let mut rng = rng(51);
    let (heads, kv_heads) = (4, 2);
    for (rows, window, causal, cap, dh) in [
        (21, 5, false, Some(2.0), 16),
        (13, 1, false, None, 13),
        (30, 8, true, Some(50.0), 65),
        (9, 20, false, Some(1.0), 7),
    ] {
        let batch = 2;
        let q = random_vec(&mut rng, batch * rows * heads * dh, 1.0);
        let k = random_vec(&mut rng, batch * rows * kv_heads * dh, 1.0);
        let v = random_vec(&mut rng, batch * rows * kv_heads * dh, 1.0);
        let mask: Vec<bool> = (0..batch * rows).map(|i| i % 7 != 3).collect();
        // Scores several caps large, so the cap matters.
        let scale = 2.0;
        let expected = cpu::attention(&cpu::AttentionCase {
            q: &q,
            k: &k,
            v: &v,
            batch,
            q_rows: rows,
            kv_rows: rows,
            kv_len: rows,
            heads,
            kv_heads,
            head_dim: dh,
            scale,
            first_pos: 0,
            causal,
            window: Some(window),
            softcap: cap,
            bias: None,
            mask: Some(&mask),
        });
        let case = Case {
            q,
            k,
            v,
            batch,
            heads,
            kv_heads,
            head_dim: dh,
            scale,
            causal,
            window: Some(window),
            softcap: cap,
            bias: None,
            mask: Some(mask.iter().map(|&m| u32::from(m)).collect()),
            step: None,
            kv_group: 1,
            row_table: None,
        };
        case.check(
            &expected,
            &format!("{rows} rows of {dh}, window {window}, causal {causal}, cap {cap:?}"),
        );
    }
}

/// Decoding with a sliding window over a ring cache: the cache holds only the last `ring`
/// positions of each sequence (position p at row p % ring), and the queries of this step
/// (after `pos` cached positions) see the `window` positions before them; with beams, a row
/// table says which sequence's ring holds each position.
#[test]
fn windowed_decoding_reads_a_ring_cache() {
    let mut rng = rng(52);
    let (heads, kv_heads, dh, window) = (2, 1, 8, 6);
    for (pos, rows, tabled) in [
        (0, 1, false),
        (3, 1, false),
        (17, 1, false),
        (40, 3, false),
        (25, 1, true),
    ] {
        let batch = 3;
        let ring = window + rows - 1;
        let total = pos + rows;
        let kv_w = kv_heads * dh;
        let q = random_vec(&mut rng, batch * rows * heads * dh, 1.0);
        // Every position's keys and values, then the ring each sequence's cache keeps.
        let k_full = random_vec(&mut rng, batch * total * kv_w, 1.0);
        let v_full = random_vec(&mut rng, batch * total * kv_w, 1.0);
        let source = |b: usize, p: usize| if tabled { (b + p) % batch } else { b };
        let ring_of = |full: &[f32]| -> Vec<f32> {
            // Rows outside the window hold garbage, which the ring must never read.
            let mut out = random_vec(
                &mut crate::common::rng(1000 + pos as u64),
                batch * ring * kv_w,
                9.0,
            );
            for b in 0..batch {
                for p in total.saturating_sub(ring)..total {
                    out[(b * ring + p % ring) * kv_w..][..kv_w]
                        .copy_from_slice(&full[(b * total + p) * kv_w..][..kv_w]);
                }
            }
            out
        };
        // What sequence b reads at position p: the full history of source(b, p).
        let routed = |full: &[f32]| -> Vec<f32> {
            (0..batch * total)
                .flat_map(|r| {
                    let (b, p) = (r / total, r % total);
                    full[(source(b, p) * total + p) * kv_w..][..kv_w].to_vec()
                })
                .collect()
        };
        let expected = cpu::attention(&cpu::AttentionCase {
            q: &q,
            k: &routed(&k_full),
            v: &routed(&v_full),
            batch,
            q_rows: rows,
            kv_rows: total,
            kv_len: total,
            heads,
            kv_heads,
            head_dim: dh,
            scale: 0.4,
            first_pos: pos,
            causal: true,
            window: Some(window),
            softcap: None,
            bias: None,
            mask: None,
        });
        let table = tabled.then(|| {
            (0..batch)
                .flat_map(|b| (0..total).map(move |p| source(b, p) as u32))
                .collect()
        });
        let case = Case {
            q,
            k: ring_of(&k_full),
            v: ring_of(&v_full),
            batch,
            heads,
            kv_heads,
            head_dim: dh,
            scale: 0.4,
            causal: true,
            window: Some(window),
            softcap: None,
            bias: None,
            mask: None,
            step: Some(pos as u32),
            kv_group: 1,
            row_table: table,
        };
        case.check(
            &expected,
            &format!("pos {pos}, {rows} rows, table {tabled}"),
        );
    }
}
