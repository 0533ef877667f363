//! `attention`: shapes, causal/bias/mask options, decoding from the step, grouped keys and row tables.

use crate::common::reference as cpu;
use crate::common::*;
use crate::{upload, zeros};
use seq2seq_gpu::gpu::Tensor;
use seq2seq_gpu::ops::{self, Attention, PositionBias};

struct AttnSetup {
    batch: usize,
    q_rows: usize,
    kv_rows: usize,
    heads: usize,
    head_dim: usize,
    causal: bool,
    bias: bool,
    mask: bool,
}

fn check_attention(s: AttnSetup, seed: u64) {
    let gpu = gpu();
    let mut rng = rng(seed);
    let w = s.heads * s.head_dim;
    let q = random_vec(&mut rng, s.batch * s.q_rows * w, 1.0);
    let k = random_vec(&mut rng, s.batch * s.kv_rows * w, 1.0);
    let v = random_vec(&mut rng, s.batch * s.kv_rows * w, 1.0);
    let num_buckets = 8;
    let longest = s.q_rows.max(s.kv_rows);
    let center = longest - 1;
    let lut: Vec<u32> = (0..2 * longest - 1)
        .map(|i| ((i * 5 + 3) % num_buckets) as u32)
        .collect();
    let table = random_vec(&mut rng, num_buckets * s.heads, 2.0);
    let mask: Vec<bool> = (0..s.batch * s.kv_rows).map(|i| i % 3 != 1).collect();
    let scale = 1.0 / (s.head_dim as f32).sqrt();

    let (qt, kt, vt) = (
        upload(&gpu, &q, &[s.batch * s.q_rows, w]),
        upload(&gpu, &k, &[s.batch * s.kv_rows, w]),
        upload(&gpu, &v, &[s.batch * s.kv_rows, w]),
    );
    let lut_t = Tensor::upload_u32(&gpu, "lut", &lut, &[lut.len()]).unwrap();
    let table_t = upload(&gpu, &table, &[num_buckets, s.heads]);
    let mask_u32: Vec<u32> = mask.iter().map(|&m| m as u32).collect();
    let mask_t = Tensor::upload_u32(&gpu, "mask", &mask_u32, &[mask.len()]).unwrap();
    let out = zeros(&gpu, &[s.batch * s.q_rows, w]);
    run(&gpu, |rec| {
        ops::attention(
            rec,
            Attention {
                q: qt.matrix(),
                k: kt.matrix(),
                v: vt.matrix(),
                out: out.matrix(),
                batch: s.batch,
                heads: s.heads,
                head_dim: s.head_dim,
                scale,
                causal: s.causal,
                position_bias: s.bias.then_some(PositionBias {
                    buckets: &lut_t,
                    table: &table_t,
                    center,
                }),
                key_mask: s.mask.then_some(&mask_t),
                from_step: false,
                kv_group: 1,
                row_table: None,
            },
        )
    });
    let bias_fn =
        |h: usize, qp: usize, kp: usize| table[lut[center + kp - qp] as usize * s.heads + h];
    let expected = cpu::attention(&cpu::AttentionCase {
        q: &q,
        k: &k,
        v: &v,
        batch: s.batch,
        q_rows: s.q_rows,
        kv_rows: s.kv_rows,
        kv_len: s.kv_rows,
        heads: s.heads,
        head_dim: s.head_dim,
        scale,
        first_pos: 0,
        causal: s.causal,
        bias: if s.bias { Some(&bias_fn) } else { None },
        mask: s.mask.then_some(&mask[..]),
    });
    let label = format!(
        "attention b={} q={} kv={} h={} d={} causal={} bias={} mask={}",
        s.batch, s.q_rows, s.kv_rows, s.heads, s.head_dim, s.causal, s.bias, s.mask
    );
    assert_close(&read(&gpu, &out), &expected, 1e-5, &label);
}

#[test]
fn attention_matches_reference_across_shapes_and_options() {
    let mut seed = 100;
    for (q_rows, kv_rows) in [(1, 1), (3, 17), (17, 3), (65, 63), (129, 129), (5, 200)] {
        for head_dim in [1, 16, 64, 65] {
            seed += 1;
            check_attention(
                AttnSetup {
                    batch: 1,
                    q_rows,
                    kv_rows,
                    heads: 3,
                    head_dim,
                    causal: false,
                    bias: false,
                    mask: false,
                },
                seed,
            );
        }
        for (causal, bias, mask) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
            (true, true, true),
        ] {
            if causal && q_rows != kv_rows {
                continue;
            }
            seed += 1;
            check_attention(
                AttnSetup {
                    batch: 2,
                    q_rows,
                    kv_rows,
                    heads: 2,
                    head_dim: 8,
                    causal,
                    bias,
                    mask,
                },
                seed,
            );
        }
    }
    check_attention(
        AttnSetup {
            batch: 1,
            q_rows: 2,
            kv_rows: 3,
            heads: 1,
            head_dim: 256,
            causal: false,
            bias: true,
            mask: false,
        },
        7,
    );
}

#[test]
fn attention_from_step_uses_the_cached_prefix_only() {
    // A cache of capacity 40 holding `pos` earlier tokens plus this step's rows; the rows
    // past them hold garbage that must be ignored.
    let gpu = gpu();
    let mut rng = rng(11);
    let (cap, heads, dh) = (40, 2, 16);
    let w = heads * dh;
    for (pos, rows) in [(0, 1), (5, 1), (12, 3), (38, 2)] {
        let q = random_vec(&mut rng, rows * w, 1.0);
        let k = random_vec(&mut rng, cap * w, 1.0);
        let v = random_vec(&mut rng, cap * w, 1.0);
        let lut: Vec<u32> = (0..2 * cap - 1).map(|i| (i % 7) as u32).collect();
        let table = random_vec(&mut rng, 7 * heads, 1.0);
        let (qt, kt, vt) = (
            upload(&gpu, &q, &[rows, w]),
            upload(&gpu, &k, &[cap, w]),
            upload(&gpu, &v, &[cap, w]),
        );
        let lut_t = Tensor::upload_u32(&gpu, "lut", &lut, &[lut.len()]).unwrap();
        let table_t = upload(&gpu, &table, &[7, heads]);
        let out = zeros(&gpu, &[rows, w]);
        run_at_step(&gpu, pos as u32, |rec| {
            ops::attention(
                rec,
                Attention {
                    q: qt.matrix(),
                    k: kt.matrix(),
                    v: vt.matrix(),
                    out: out.matrix(),
                    batch: 1,
                    heads,
                    head_dim: dh,
                    scale: 1.0,
                    causal: true,
                    position_bias: Some(PositionBias {
                        buckets: &lut_t,
                        table: &table_t,
                        center: cap - 1,
                    }),
                    key_mask: None,
                    from_step: true,
                    kv_group: 1,
                    row_table: None,
                },
            )
        });
        let bias_fn =
            |h: usize, qp: usize, kp: usize| table[lut[cap - 1 + kp - qp] as usize * heads + h];
        let expected = cpu::attention(&cpu::AttentionCase {
            q: &q,
            k: &k,
            v: &v,
            batch: 1,
            q_rows: rows,
            kv_rows: cap,
            kv_len: pos + rows,
            heads,
            head_dim: dh,
            scale: 1.0,
            first_pos: pos,
            causal: true,
            bias: Some(&bias_fn),
            mask: None,
        });
        assert_close(
            &read(&gpu, &out),
            &expected,
            1e-5,
            &format!("step pos={pos} rows={rows}"),
        );
    }
}

/// Beams share one encoder output (kv_group) and read their history through a row table.
#[test]
fn attention_shares_keys_across_groups_and_follows_row_tables() {
    let gpu = gpu();
    let mut rng = rng(13);
    let (beams, inputs, kv_rows, heads, dh) = (3, 2, 7, 2, 8);
    let w = heads * dh;
    let batch = beams * inputs;
    let q = random_vec(&mut rng, batch * w, 1.0);
    let k = random_vec(&mut rng, inputs * kv_rows * w, 1.0);
    let v = random_vec(&mut rng, inputs * kv_rows * w, 1.0);
    let mask: Vec<u32> = (0..inputs * kv_rows)
        .map(|i| u32::from(i % kv_rows < 5 || i < kv_rows))
        .collect();
    let (qt, kt, vt) = (
        upload(&gpu, &q, &[batch, w]),
        upload(&gpu, &k, &[inputs * kv_rows, w]),
        upload(&gpu, &v, &[inputs * kv_rows, w]),
    );
    let mask_t = Tensor::upload_u32(&gpu, "mask", &mask, &[mask.len()]).unwrap();
    let out = zeros(&gpu, &[batch, w]);
    #[allow(clippy::too_many_arguments)]
    fn attention<'a>(
        q: &'a Tensor,
        out: &'a Tensor,
        batch: usize,
        heads: usize,
        dh: usize,
        group: usize,
        table: Option<&'a Tensor>,
        kv: (&'a Tensor, &'a Tensor),
        mask: Option<&'a Tensor>,
    ) -> Attention<'a> {
        Attention {
            q: q.matrix(),
            k: kv.0.matrix(),
            v: kv.1.matrix(),
            out: out.matrix(),
            batch,
            heads,
            head_dim: dh,
            scale: 0.5,
            causal: false,
            position_bias: None,
            key_mask: mask,
            from_step: false,
            kv_group: group,
            row_table: table,
        }
    }
    run(&gpu, |rec| {
        ops::attention(
            rec,
            attention(
                &qt,
                &out,
                batch,
                heads,
                dh,
                beams,
                None,
                (&kt, &vt),
                Some(&mask_t),
            ),
        )
    });
    // The same as giving every beam its own copy of its input's keys, values and mask.
    let expand = |x: &[f32]| -> Vec<f32> {
        (0..batch)
            .flat_map(|b| x[(b / beams) * kv_rows * w..][..kv_rows * w].to_vec())
            .collect()
    };
    let mask_bool: Vec<bool> = (0..batch)
        .flat_map(|b| {
            mask[(b / beams) * kv_rows..][..kv_rows]
                .iter()
                .map(|&m| m != 0)
                .collect::<Vec<_>>()
        })
        .collect();
    let (ke, ve) = (expand(&k), expand(&v));
    let expected = cpu::attention(&cpu::AttentionCase {
        q: &q,
        k: &ke,
        v: &ve,
        batch,
        q_rows: 1,
        kv_rows,
        kv_len: kv_rows,
        heads,
        head_dim: dh,
        scale: 0.5,
        first_pos: 0,
        causal: false,
        bias: None,
        mask: Some(&mask_bool),
    });
    assert_close(&read(&gpu, &out), &expected, 1e-5, "grouped keys");

    // A row table that makes each sequence read another's rows reproduces that layout.
    let own_k = upload(&gpu, &ke, &[batch * kv_rows, w]);
    let own_v = upload(&gpu, &ve, &[batch * kv_rows, w]);
    let sources: Vec<usize> = (0..batch).map(|b| (b + 1) % batch).collect();
    let table: Vec<u32> = (0..batch)
        .flat_map(|b| {
            let source = sources[b];
            (0..kv_rows).map(move |j| (source * kv_rows + j) as u32)
        })
        .collect();
    let table_t = Tensor::upload_u32(&gpu, "table", &table, &[batch, kv_rows]).unwrap();
    let routed = zeros(&gpu, &[batch, w]);
    run(&gpu, |rec| {
        ops::attention(
            rec,
            attention(
                &qt,
                &routed,
                batch,
                heads,
                dh,
                1,
                Some(&table_t),
                (&own_k, &own_v),
                None,
            ),
        )
    });
    let ks: Vec<f32> = (0..batch)
        .flat_map(|b| ke[sources[b] * kv_rows * w..][..kv_rows * w].to_vec())
        .collect();
    let vs: Vec<f32> = (0..batch)
        .flat_map(|b| ve[sources[b] * kv_rows * w..][..kv_rows * w].to_vec())
        .collect();
    let expected = cpu::attention(&cpu::AttentionCase {
        q: &q,
        k: &ks,
        v: &vs,
        batch,
        q_rows: 1,
        kv_rows,
        kv_len: kv_rows,
        heads,
        head_dim: dh,
        scale: 0.5,
        first_pos: 0,
        causal: false,
        bias: None,
        mask: None,
    });
    assert_close(&read(&gpu, &routed), &expected, 1e-5, "row table");
}
