//! `attention`: shapes, causal/bias/mask options, decoding from the step, grouped keys and
//! row tables, each with the adapter's reductions (subgroups where it has them), with
//! workgroup-memory ones, and with the keys split across workgroups.

use std::sync::{Arc, OnceLock};

use crate::common::reference as cpu;
use crate::common::*;
use crate::{upload, zeros};
use seq2seq_gpu::gpu::{Gpu, GpuOptions, Tensor};
use seq2seq_gpu::ops::{self, Attention, AttentionForm, KeySplit, PositionBias};

/// A device that reduces through workgroup memory whatever the adapter has.
fn shared_memory_gpu() -> Arc<Gpu> {
    static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
    let options = GpuOptions {
        subgroups: false,
        ..Default::default()
    };
    GPU.get_or_init(|| pollster::block_on(Gpu::with_options(options)).expect("a wgpu adapter"))
        .clone()
}

/// (device, form, key splits) every case runs with: both forms with both reductions, and
/// splits.
pub(crate) fn variants() -> Vec<(Arc<Gpu>, AttentionForm, usize)> {
    let mut variants = Vec::new();
    for gpu in [gpu(), shared_memory_gpu()] {
        for form in AttentionForm::ALL {
            variants.push((gpu.clone(), form, 1));
        }
    }
    variants.push((gpu(), AttentionForm::AlongHeadDim, 2));
    variants.push((shared_memory_gpu(), AttentionForm::KeyPerLane, 5));
    variants
}

/// One attention call as host data: what the kernel reads, and its options.
pub(crate) struct Case {
    pub(crate) q: Vec<f32>,
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
    pub(crate) batch: usize,
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) scale: f32,
    pub(crate) causal: bool,
    pub(crate) window: Option<usize>,
    pub(crate) softcap: Option<f32>,
    /// (bucket of each relative distance, [buckets, heads] table, center)
    pub(crate) bias: Option<(Vec<u32>, Vec<f32>, usize)>,
    pub(crate) mask: Option<Vec<u32>>,
    /// Decode from this step position.
    pub(crate) step: Option<u32>,
    pub(crate) kv_group: usize,
    /// The sequence whose cache rows hold each (sequence, position).
    pub(crate) row_table: Option<Vec<u32>>,
}

impl Case {
    fn width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// The kernel's output on `gpu` in `form` with the keys in `splits` shares.
    pub(crate) fn run_on(&self, gpu: &Gpu, form: AttentionForm, splits: usize) -> Vec<f32> {
        let w = self.width();
        let kv_w = self.kv_heads * self.head_dim;
        let kv_items_rows = self.k.len() / kv_w;
        let qt = upload(gpu, &self.q, &[self.q.len() / w, w]);
        // Keys and values side by side in one buffer, as a fused projection writes them.
        let kv: Vec<f32> = (self.k.chunks(kv_w).zip(self.v.chunks(kv_w)))
            .flat_map(|(k, v)| [k, v].concat())
            .collect();
        let kvt = upload(gpu, &kv, &[kv_items_rows, 2 * kv_w]);
        let u32s = |data: &[u32]| Tensor::upload_u32(gpu, "u32", data, &[data.len()]).unwrap();
        let bias = self.bias.as_ref().map(|(lut, table, center)| {
            (
                u32s(lut),
                upload(gpu, table, &[table.len() / self.heads, self.heads]),
                *center,
            )
        });
        let mask = self.mask.as_deref().map(u32s);
        let row_table = self.row_table.as_deref().map(u32s);
        let out = zeros(gpu, &[self.q.len() / w, w]);
        let queries = self.q.len() / w * self.heads;
        let records = zeros(
            gpu,
            &[ops::split_records_len(queries, self.head_dim, splits)],
        );
        run_at_step(gpu, self.step.unwrap_or(0), |rec| {
            ops::attention_with(
                rec,
                Some(form),
                Attention {
                    q: qt.matrix().into(),
                    k: kvt.matrix().columns(0, kv_w),
                    v: kvt.matrix().columns(kv_w, kv_w),
                    out: out.matrix(),
                    batch: self.batch,
                    heads: self.heads,
                    kv_heads: self.kv_heads,
                    head_dim: self.head_dim,
                    scale: self.scale,
                    causal: self.causal,
                    window: self.window,
                    softcap: self.softcap,
                    position_bias: bias.as_ref().map(|(buckets, table, center)| PositionBias {
                        buckets,
                        table,
                        center: *center,
                    }),
                    key_mask: mask.as_ref(),
                    from_step: self.step.is_some(),
                    kv_group: self.kv_group,
                    row_table: row_table.as_ref(),
                    pages: None,
                    split: (splits > 1).then_some(KeySplit {
                        splits,
                        records: &records,
                    }),
                },
            )
        });
        read(gpu, &out)
    }

    /// Every variant's output against `expected`.
    pub(crate) fn check(&self, expected: &[f32], label: &str) {
        for (gpu, form, splits) in variants() {
            let got = self.run_on(&gpu, form, splits);
            let label = format!(
                "{label}, {form:?}, subgroups {}, {splits} splits",
                gpu.subgroups()
            );
            assert_close(&got, expected, 1e-5, &label);
        }
    }
}

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
    check_attention_sharpened(s, seed, 1.0);
}

/// With the scores `sharpness` times the usual scale: far apart, a wrong running max
/// overflows exp.
fn check_attention_sharpened(s: AttnSetup, seed: u64, sharpness: f32) {
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
    let scale = sharpness / (s.head_dim as f32).sqrt();
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
        kv_heads: s.heads,
        head_dim: s.head_dim,
        scale,
        first_pos: 0,
        causal: s.causal,
        window: None,
        softcap: None,
        bias: if s.bias { Some(&bias_fn) } else { None },
        mask: s.mask.then_some(&mask[..]),
    });
    let label = format!(
        "attention b={} q={} kv={} h={} d={} causal={} bias={} mask={} x{sharpness}",
        s.batch, s.q_rows, s.kv_rows, s.heads, s.head_dim, s.causal, s.bias, s.mask
    );
    let case = Case {
        q,
        k,
        v,
        batch: s.batch,
        heads: s.heads,
        kv_heads: s.heads,
        head_dim: s.head_dim,
        scale,
        causal: s.causal,
        window: None,
        softcap: None,
        bias: s.bias.then(|| (lut.clone(), table.clone(), center)),
        mask: s.mask.then(|| mask.iter().map(|&m| u32::from(m)).collect()),
        step: None,
        kv_group: 1,
        row_table: None,
    };
    case.check(&expected, &label);
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

/// Decoding over a long cache: many tiles per split, and a last tile of one key; and scores
/// hundreds apart, where only the true running max keeps exp finite.
#[test]
fn attention_over_long_key_ranges() {
    for (kv_rows, head_dim, seed, sharpness) in [
        (1025, 64, 21, 1.0),
        (700, 33, 22, 1.0),
        (300, 16, 23, 400.0),
    ] {
        check_attention_sharpened(
            AttnSetup {
                batch: 2,
                q_rows: 1,
                kv_rows,
                heads: 2,
                head_dim,
                causal: false,
                bias: true,
                mask: true,
            },
            seed,
            sharpness,
        );
    }
}

#[test]
fn attention_from_step_uses_the_cached_prefix_only() {
    // A cache of capacity 40 holding `pos` earlier tokens plus this step's rows; the rows
    // past them hold garbage that must be ignored.
    let mut rng = rng(11);
    let (cap, heads, dh) = (40, 2, 16);
    let w = heads * dh;
    for (pos, rows) in [(0, 1), (5, 1), (12, 3), (38, 2)] {
        let q = random_vec(&mut rng, rows * w, 1.0);
        let k = random_vec(&mut rng, cap * w, 1.0);
        let v = random_vec(&mut rng, cap * w, 1.0);
        let lut: Vec<u32> = (0..2 * cap - 1).map(|i| (i % 7) as u32).collect();
        let table = random_vec(&mut rng, 7 * heads, 1.0);
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
            kv_heads: heads,
            head_dim: dh,
            scale: 1.0,
            first_pos: pos,
            causal: true,
            window: None,
            softcap: None,
            bias: Some(&bias_fn),
            mask: None,
        });
        let case = Case {
            q,
            k,
            v,
            batch: 1,
            heads,
            kv_heads: heads,
            head_dim: dh,
            scale: 1.0,
            causal: true,
            window: None,
            softcap: None,
            bias: Some((lut.clone(), table.clone(), cap - 1)),
            mask: None,
            step: Some(pos as u32),
            kv_group: 1,
            row_table: None,
        };
        case.check(&expected, &format!("step pos={pos} rows={rows}"));
    }
}

/// Beams share one encoder output (kv_group) and read their history through a row table.
#[test]
fn attention_shares_keys_across_groups_and_follows_row_tables() {
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
    let reference = |k: &[f32], v: &[f32], mask: Option<&[bool]>| {
        cpu::attention(&cpu::AttentionCase {
            q: &q,
            k,
            v,
            batch,
            q_rows: 1,
            kv_rows,
            kv_len: kv_rows,
            heads,
            kv_heads: heads,
            head_dim: dh,
            scale: 0.5,
            first_pos: 0,
            causal: false,
            window: None,
            softcap: None,
            bias: None,
            mask,
        })
    };
    let grouped = Case {
        q: q.clone(),
        k: k.clone(),
        v: v.clone(),
        batch,
        heads,
        kv_heads: heads,
        head_dim: dh,
        scale: 0.5,
        causal: false,
        window: None,
        softcap: None,
        bias: None,
        mask: Some(mask.clone()),
        step: None,
        kv_group: beams,
        row_table: None,
    };
    grouped.check(&reference(&ke, &ve, Some(&mask_bool)), "grouped keys");

    // A row table that makes each sequence read other sequences' rows, position by
    // position, reproduces that layout.
    let source = |b: usize, j: usize| (b + 1 + j % 2) % batch;
    let table: Vec<u32> = (0..batch)
        .flat_map(|b| (0..kv_rows).map(move |j| source(b, j) as u32))
        .collect();
    let routed_from = |x: &[f32]| -> Vec<f32> {
        (0..batch * kv_rows)
            .flat_map(|r| {
                let (b, j) = (r / kv_rows, r % kv_rows);
                x[(source(b, j) * kv_rows + j) * w..][..w].to_vec()
            })
            .collect()
    };
    let expected = reference(&routed_from(&ke), &routed_from(&ve), None);
    let routed = Case {
        k: ke,
        v: ve,
        mask: None,
        kv_group: 1,
        row_table: Some(table),
        ..grouped
    };
    routed.check(&expected, "row table");
}

#[test]
fn attention_refuses_bad_key_splits() {
    let gpu = gpu();
    let (heads, dh) = (2, 8);
    let x = zeros(&gpu, &[3, heads * dh]);
    let small = zeros(&gpu, &[ops::split_records_len(3 * heads, dh, 4) - 1]);
    let enough = zeros(&gpu, &[ops::split_records_len(3 * heads, dh, 65)]);
    let values = zeros(&gpu, &[3, heads * dh]);
    let attention = |v, split| Attention {
        q: x.matrix().into(),
        k: x.matrix(),
        v,
        out: x.matrix(),
        batch: 1,
        heads,
        kv_heads: heads,
        head_dim: dh,
        scale: 1.0,
        causal: false,
        window: None,
        softcap: None,
        position_bias: None,
        key_mask: None,
        from_step: false,
        kv_group: 1,
        row_table: None,
        pages: None,
        split,
    };
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    for (splits, records) in [(1, &enough), (65, &enough), (4, &small)] {
        let split = Some(KeySplit { splits, records });
        let result = ops::attention(&mut rec, attention(x.matrix(), split));
        let message = result.expect_err("a bad split").to_string();
        assert!(message.contains("key splits"), "{message}");
    }
    // Keys and values are bound as one buffer.
    let apart = attention(values.matrix(), None);
    let message = ops::attention(&mut rec, apart)
        .expect_err("apart")
        .to_string();
    assert!(message.contains("one buffer"), "{message}");
}
