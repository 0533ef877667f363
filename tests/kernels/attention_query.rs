//! `attention` with a projected query: each workgroup projects its head of its input row
//! (normalised, in every weight encoding, with a bias) and attends over keys and values
//! that are column slices of one buffer, as the decoder's cross-attention does; against
//! the projection and attention computed apart on the CPU.

use crate::attention::variants;
use crate::common::reference as cpu;
use crate::common::*;
use crate::{norm, upload, weight, zeros};
use seq2seq_gpu::gpu::Tensor;
use seq2seq_gpu::ops::{self, Attention, KeySplit, NormKind, Query, QueryProjection};

struct Shape {
    batch: usize,
    /// Batch items per key/value item (beams).
    group: usize,
    q_rows: usize,
    kv_rows: usize,
    heads: usize,
    dh: usize,
    /// The input rows' width.
    d: usize,
    masked: bool,
}

const fn shape(batch: usize, group: usize, q_rows: usize, kv_rows: usize) -> Shape {
    Shape {
        batch,
        group,
        q_rows,
        kv_rows,
        heads: 2,
        dh: 8,
        d: 16,
        masked: false,
    }
}

const SHAPES: [Shape; 4] = [
    shape(1, 1, 1, 5),
    Shape {
        heads: 3,
        dh: 65,
        d: 132,
        masked: true,
        ..shape(4, 2, 1, 17)
    },
    Shape {
        dh: 64,
        d: 64,
        masked: true,
        ..shape(2, 1, 3, 70)
    },
    Shape {
        heads: 1,
        dh: 256,
        d: 8,
        ..shape(1, 1, 2, 3)
    },
];

#[test]
fn attention_projects_its_own_queries() {
    let mut rng = rng(41);
    let norms = [None, Some(NormKind::RmsNorm), Some(NormKind::LayerNorm)];
    for (i, shape) in SHAPES.iter().enumerate() {
        let Shape {
            batch,
            group,
            q_rows,
            kv_rows,
            heads,
            dh,
            d,
            masked,
        } = *shape;
        let encoding = ["f32", "f16", "int8"][i % 3];
        let kind = norms[i % 3];
        let w = heads * dh;
        let kv_items = batch / group;
        // x is a column slice of a wider buffer, with a large mean.
        let wide = d + 8;
        let x_values: Vec<f32> = random_vec(&mut rng, batch * q_rows * wide, 1.0)
            .iter()
            .map(|v| v + 2.0)
            .collect();
        let x: Vec<f32> = (x_values.chunks(wide))
            .flat_map(|r| r[4..4 + d].to_vec())
            .collect();
        let (gamma, beta) = (random_vec(&mut rng, d, 1.0), random_vec(&mut rng, d, 0.5));
        let raw = random_vec(&mut rng, w * d, 0.3);
        // The values the kernel computes with: the encoding's rounding of `raw`.
        let values = weight(&gpu(), encoding, &raw, w, d).1;
        let bias = (i % 2 == 1).then(|| random_vec(&mut rng, w, 1.0));
        // Keys at columns w..2w and values at 2w..3w of one buffer.
        let kv = random_vec(&mut rng, kv_items * kv_rows * 3 * w, 1.0);
        let mask: Vec<bool> = (0..kv_items * kv_rows).map(|j| j % 4 != 2).collect();

        let normed = match kind {
            None => x.clone(),
            Some(NormKind::RmsNorm) => cpu::rms_norm(&x, &gamma, 1e-5),
            Some(NormKind::LayerNorm) => cpu::layer_norm(&x, &gamma, &beta, 1e-5),
        };
        let q = cpu::linear(&normed, &values, bias.as_deref(), batch * q_rows, w, d);
        // The reference takes a key/value item per batch item.
        let per_item = |offset: usize| -> Vec<f32> {
            (0..batch * kv_rows)
                .flat_map(|r| {
                    let row = (r / kv_rows / group) * kv_rows + r % kv_rows;
                    kv[row * 3 * w + offset..][..w].to_vec()
                })
                .collect()
        };
        let item_mask: Vec<bool> = (0..batch * kv_rows)
            .map(|r| mask[(r / kv_rows / group) * kv_rows + r % kv_rows])
            .collect();
        let scale = 0.3;
        let expected = cpu::attention(&cpu::AttentionCase {
            q: &q,
            k: &per_item(w),
            v: &per_item(2 * w),
            batch,
            q_rows,
            kv_rows,
            kv_len: kv_rows,
            heads,
            kv_heads: heads,
            head_dim: dh,
            scale,
            first_pos: 0,
            causal: false,
            window: None,
            softcap: None,
            bias: None,
            mask: masked.then_some(&item_mask[..]),
        });

        for (gpu, form, splits) in variants() {
            let xt = upload(&gpu, &x_values, &[batch * q_rows, wide]);
            let kvt = upload(&gpu, &kv, &[kv_items * kv_rows, 3 * w]);
            let bt = bias.as_ref().map(|b| upload(&gpu, b, &[w]));
            let mask_values: Vec<u32> = mask.iter().map(|&m| u32::from(m)).collect();
            let mt = Tensor::upload_u32(&gpu, "mask", &mask_values, &[mask.len()]).unwrap();
            let norm = kind.map(|kind| norm(&gpu, kind, &gamma, &beta, 1e-5));
            let wt = weight(&gpu, encoding, &raw, w, d).0;
            let out = zeros(&gpu, &[batch * q_rows, w]);
            let records = zeros(
                &gpu,
                &[ops::split_records_len(batch * q_rows * heads, dh, splits)],
            );
            let query = QueryProjection {
                x: xt.matrix().columns(4, d),
                weight: &wt,
                bias: bt.as_ref(),
                norm: norm.as_ref(),
            };
            let kv_view = kvt.matrix();
            run(&gpu, |rec| {
                ops::attention_with(
                    rec,
                    Some(form),
                    Attention {
                        q: Query::Projected(query),
                        k: kv_view.columns(w, w),
                        v: kv_view.columns(2 * w, w),
                        out: out.matrix(),
                        batch,
                        heads,
                        kv_heads: heads,
                        head_dim: dh,
                        scale,
                        causal: false,
                        window: None,
                        softcap: None,
                        position_bias: None,
                        key_mask: masked.then_some(&mt),
                        from_step: false,
                        kv_group: group,
                        row_table: None,
                        pages: None,
                        split: (splits > 1).then_some(KeySplit {
                            splits,
                            records: &records,
                        }),
                    },
                )
            });
            let label = format!(
                "projected query {encoding} {kind:?} bias {} b={batch}/{group} q={q_rows} kv={kv_rows} h={heads} d={dh} k={d}, {form:?}, subgroups {}, {splits} splits",
                bias.is_some(),
                gpu.subgroups()
            );
            assert_close(&read(&gpu, &out), &expected, 3e-5, &label);
        }
    }
}
