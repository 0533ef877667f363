//! Every kernel against its CPU reference on random inputs, at sizes that are not
//! multiples of the tiles.

mod common;

use common::reference as cpu;
use common::*;
use seq2seq_gpu::gpu::Tensor;
use seq2seq_gpu::ops::{self, Activation, Attention, Epilogue, NormKind, PositionBias};

type CpuActivation = fn(f32) -> f32;

const ACTIVATIONS: [(Activation, CpuActivation); 5] = [
    (Activation::Identity, |x| x),
    (Activation::Relu, cpu::relu),
    (Activation::Gelu, cpu::gelu_erf),
    (Activation::GeluTanh, cpu::gelu_tanh),
    (Activation::Silu, cpu::silu),
];

fn upload(gpu: &seq2seq_gpu::gpu::Gpu, data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::upload_f32(gpu, "test", data, shape).unwrap()
}

fn zeros(gpu: &seq2seq_gpu::gpu::Gpu, shape: &[usize]) -> Tensor {
    upload(gpu, &vec![0.0; shape.iter().product()], shape)
}

#[test]
fn matmul_matches_reference_at_awkward_sizes() {
    let gpu = gpu();
    let mut rng = rng(1);
    for m in AWKWARD_SIZES.iter().copied().chain([5, 8, 9]) {
        for &n in &AWKWARD_SIZES {
            for k in [1, 17, 64, 129] {
                let x = random_vec(&mut rng, m * k, 1.0);
                let w = random_vec(&mut rng, n * k, 1.0);
                let xt = upload(&gpu, &x, &[m, k]);
                let wt = upload(&gpu, &w, &[n, k]);
                let out = zeros(&gpu, &[m, n]);
                run(&gpu, |rec| {
                    ops::linear(
                        rec,
                        xt.matrix(),
                        &wt,
                        None,
                        out.matrix(),
                        Epilogue::default(),
                    )
                });
                let expected = cpu::linear(&x, &w, None, m, n, k);
                assert_close(
                    &read(&gpu, &out),
                    &expected,
                    1e-5,
                    &format!("matmul {m}x{n}x{k}"),
                );
            }
        }
    }
}

/// f16 weights through both paths: WGSL f16 where the adapter has shader-f16 (lavapipe
/// does) and unpacking from u32 pairs where it does not (SwiftShader in the browser).
#[test]
fn matmul_reads_f16_weights_natively_and_packed() {
    let native = gpu();
    let packed = pollster::block_on(seq2seq_gpu::gpu::Gpu::with_options(
        seq2seq_gpu::gpu::GpuOptions {
            shader_f16: false,
            ..Default::default()
        },
    ))
    .unwrap();
    assert!(!packed.native_f16());
    check_f16_weights(&native);
    check_f16_weights(&packed);
}

fn check_f16_weights(gpu: &std::sync::Arc<seq2seq_gpu::gpu::Gpu>) {
    let mut rng = rng(21);
    for m in [1, 3, 8, 65] {
        // Odd K makes rows start in the middle of a packed word.
        for (n, k) in [(1, 1), (17, 63), (65, 129), (64, 64), (3, 20)] {
            let x = random_vec(&mut rng, m * k, 1.0);
            let w = random_vec(&mut rng, n * k, 1.0);
            let rounded: Vec<f32> = w.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect();
            let xt = upload(gpu, &x, &[m, k]);
            let wt = Tensor::upload_f16(gpu, "w", &w, &[n, k]).unwrap();
            let out = zeros(gpu, &[m, n]);
            run(gpu, |rec| {
                ops::linear(
                    rec,
                    xt.matrix(),
                    &wt,
                    None,
                    out.matrix(),
                    Epilogue::default(),
                )
            });
            let expected = cpu::linear(&x, &rounded, None, m, n, k);
            assert_close(
                &read(gpu, &out),
                &expected,
                1e-5,
                &format!("f16 matmul {m}x{n}x{k}"),
            );
        }
    }
}

#[test]
fn matmul_epilogue_bias_activation_scale_and_accumulate() {
    let gpu = gpu();
    let mut rng = rng(2);
    for m in [1, 3, 8, 65] {
        let (n, k) = (63, 33);
        for (act, f) in ACTIVATIONS {
            for accumulate in [false, true] {
                let x = random_vec(&mut rng, m * k, 1.0);
                let w = random_vec(&mut rng, n * k, 1.0);
                let b = random_vec(&mut rng, n, 1.0);
                let prior = random_vec(&mut rng, m * n, 1.0);
                let (xt, wt, bt) = (
                    upload(&gpu, &x, &[m, k]),
                    upload(&gpu, &w, &[n, k]),
                    upload(&gpu, &b, &[n]),
                );
                let out = upload(&gpu, &prior, &[m, n]);
                let epilogue = Epilogue {
                    activation: act,
                    alpha: 0.37,
                    accumulate,
                };
                run(&gpu, |rec| {
                    ops::linear(rec, xt.matrix(), &wt, Some(&bt), out.matrix(), epilogue)
                });
                let expected: Vec<f32> = cpu::linear(&x, &w, Some(&b), m, n, k)
                    .iter()
                    .zip(&prior)
                    .map(|(v, p)| 0.37 * f(*v) + if accumulate { *p } else { 0.0 })
                    .collect();
                assert_close(
                    &read(&gpu, &out),
                    &expected,
                    2e-5,
                    &format!("{act:?} m={m} acc={accumulate}"),
                );
            }
        }
    }
}

#[test]
fn matmul_reads_and_writes_column_slices() {
    let gpu = gpu();
    let mut rng = rng(3);
    // The second shape lets the vec4 kernels read the slice.
    for (m, k, start) in [(2, 17, 9), (70, 17, 9), (2, 16, 8), (70, 16, 8)] {
        let (n, wide_in, wide_out) = (5, 40, 30);
        let x_full = random_vec(&mut rng, m * wide_in, 1.0);
        let w = random_vec(&mut rng, n * k, 1.0);
        let prior = random_vec(&mut rng, m * wide_out, 1.0);
        let (xt, wt) = (
            upload(&gpu, &x_full, &[m, wide_in]),
            upload(&gpu, &w, &[n, k]),
        );
        let out = upload(&gpu, &prior, &[m, wide_out]);
        run(&gpu, |rec| {
            ops::linear(
                rec,
                xt.matrix().columns(start, k),
                &wt,
                None,
                out.matrix().columns(11, n),
                Epilogue::default(),
            )
        });
        let x: Vec<f32> = x_full
            .chunks(wide_in)
            .flat_map(|r| r[start..start + k].to_vec())
            .collect();
        let product = cpu::linear(&x, &w, None, m, n, k);
        let mut expected = prior.clone();
        for i in 0..m {
            expected[i * wide_out + 11..][..n].copy_from_slice(&product[i * n..][..n]);
        }
        assert_close(
            &read(&gpu, &out),
            &expected,
            1e-5,
            &format!("sliced m={m} k={k}"),
        );
    }
}

/// Each kernel `linear` can pick, and the benchmark's simple baseline, on shapes each one
/// takes; forms a shape does not allow are refused.
#[test]
fn every_matmul_form_matches_reference() {
    use ops::MatmulForm;
    let gpu = gpu();
    let mut rng = rng(4);
    for form in MatmulForm::ALL {
        let rows: &[usize] = if form.is_skinny() {
            &[1, 5, 8]
        } else {
            &[1, 70, 129]
        };
        for &m in rows {
            for (n, k) in [(65, 64), (3, 132), (130, 8)] {
                let x = random_vec(&mut rng, m * k, 1.0);
                let w = random_vec(&mut rng, n * k, 1.0);
                let (xt, wt, out) = (
                    upload(&gpu, &x, &[m, k]),
                    upload(&gpu, &w, &[n, k]),
                    zeros(&gpu, &[m, n]),
                );
                run(&gpu, |rec| {
                    ops::linear_with(
                        rec,
                        Some(form),
                        xt.matrix(),
                        &wt,
                        None,
                        out.matrix(),
                        Epilogue::default(),
                    )
                });
                let expected = cpu::linear(&x, &w, None, m, n, k);
                assert_close(
                    &read(&gpu, &out),
                    &expected,
                    1e-5,
                    &format!("{form:?} {m}x{n}x{k}"),
                );
            }
        }
    }
    let (x, w, out) = (
        zeros(&gpu, &[9, 6]),
        zeros(&gpu, &[2, 6]),
        zeros(&gpu, &[9, 2]),
    );
    for form in [
        MatmulForm::Skinny,
        MatmulForm::TiledVec4,
        MatmulForm::SkinnyVec4,
    ] {
        let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
        let err = ops::linear_with(
            &mut rec,
            Some(form),
            x.matrix(),
            &w,
            None,
            out.matrix(),
            Epilogue::default(),
        );
        assert!(err.is_err(), "{form:?} must refuse 9 rows of width 6");
    }
}

/// int8 weights with a scale per row, through every kernel form a shape allows (odd K
/// splits rows across words).
#[test]
fn matmul_reads_int8_weights_with_row_scales() {
    let gpu = gpu();
    let mut rng = rng(5);
    for m in [1, 8, 70] {
        for (n, k) in [(1, 1), (17, 63), (65, 128), (5, 36)] {
            let x = random_vec(&mut rng, m * k, 1.0);
            let q: Vec<i8> = random_vec(&mut rng, n * k, 1.0)
                .iter()
                .map(|v| (v * 127.0).round() as i8)
                .chain([-128, 127])
                .take(n * k)
                .collect();
            let scales: Vec<f32> = (0..n).map(|r| 0.01 + r as f32 * 1e-3).collect();
            let w: Vec<f32> = q
                .iter()
                .enumerate()
                .map(|(i, &v)| v as f32 * scales[i / k])
                .collect();
            let xt = upload(&gpu, &x, &[m, k]);
            let wt = Tensor::upload_int8(&gpu, "w", &q, &scales, &[n, k]).unwrap();
            let bias = random_vec(&mut rng, n, 1.0);
            let bt = upload(&gpu, &bias, &[n]);
            let out = zeros(&gpu, &[m, n]);
            run(&gpu, |rec| {
                ops::linear(
                    rec,
                    xt.matrix(),
                    &wt,
                    Some(&bt),
                    out.matrix(),
                    Epilogue::default(),
                )
            });
            let expected = cpu::linear(&x, &w, Some(&bias), m, n, k);
            assert_close(
                &read(&gpu, &out),
                &expected,
                1e-5,
                &format!("int8 matmul {m}x{n}x{k}"),
            );
        }
    }
}

#[test]
fn matmul_rejects_mismatched_shapes() {
    let gpu = gpu();
    let x = zeros(&gpu, &[3, 4]);
    let w = zeros(&gpu, &[5, 6]);
    let out = zeros(&gpu, &[3, 5]);
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    let err = ops::linear(
        &mut rec,
        x.matrix(),
        &w,
        None,
        out.matrix(),
        Epilogue::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot produce"), "{err}");
}

#[test]
fn softmax_is_stable_and_matches_reference() {
    let gpu = gpu();
    let mut rng = rng(4);
    for cols in AWKWARD_SIZES.iter().copied().chain([1000, 4099]) {
        let rows = 3;
        // Large magnitudes: a naive exp would overflow to inf.
        let x = random_vec(&mut rng, rows * cols, 80.0);
        let t = upload(&gpu, &x, &[rows, cols]);
        run(&gpu, |rec| ops::softmax(rec, &t));
        let got = read(&gpu, &t);
        assert_close(
            &got,
            &cpu::softmax(&x, cols),
            1e-5,
            &format!("softmax cols={cols}"),
        );
        for row in got.chunks(cols) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        }
    }
}

#[test]
fn layer_norm_and_rms_norm_match_reference() {
    let gpu = gpu();
    let mut rng = rng(5);
    for cols in AWKWARD_SIZES.iter().copied().chain([512, 1000]) {
        let rows = 4;
        // An offset mean checks the two-pass variance.
        let x: Vec<f32> = random_vec(&mut rng, rows * cols, 2.0)
            .iter()
            .map(|v| v + 30.0)
            .collect();
        let w = random_vec(&mut rng, cols, 1.5);
        let b = random_vec(&mut rng, cols, 0.5);
        let (xt, wt, bt) = (
            upload(&gpu, &x, &[rows, cols]),
            upload(&gpu, &w, &[cols]),
            upload(&gpu, &b, &[cols]),
        );
        let y = zeros(&gpu, &[rows, cols]);
        run(&gpu, |rec| {
            ops::norm(rec, NormKind::LayerNorm, &xt, &y, &wt, Some(&bt), 1e-5)
        });
        assert_close(
            &read(&gpu, &y),
            &cpu::layer_norm(&x, &w, &b, 1e-5),
            1e-4,
            &format!("layer norm {cols}"),
        );
        run(&gpu, |rec| {
            ops::norm(rec, NormKind::RmsNorm, &xt, &y, &wt, None, 1e-6)
        });
        assert_close(
            &read(&gpu, &y),
            &cpu::rms_norm(&x, &w, 1e-6),
            1e-5,
            &format!("rms norm {cols}"),
        );
        // In place, as post-norm models use it.
        run(&gpu, |rec| {
            ops::norm(rec, NormKind::LayerNorm, &xt, &xt, &wt, Some(&bt), 1e-5)
        });
        assert_close(
            &read(&gpu, &xt),
            &cpu::layer_norm(&x, &w, &b, 1e-5),
            1e-4,
            &format!("in-place {cols}"),
        );
    }
}

#[test]
fn activations_match_reference_including_extremes() {
    let gpu = gpu();
    let mut rng = rng(6);
    let mut x = random_vec(&mut rng, 1000, 8.0);
    x.extend([-100.0, -30.0, -15.5, 0.0, 15.5, 30.0, 100.0]);
    for (act, f) in ACTIVATIONS {
        let xt = upload(&gpu, &x, &[x.len()]);
        let y = zeros(&gpu, &[x.len()]);
        run(&gpu, |rec| ops::activation(rec, &xt, &y, act));
        let got = read(&gpu, &y);
        assert!(
            got.iter().all(|v| v.is_finite()),
            "{act:?} produced a non-finite value"
        );
        let expected: Vec<f32> = x.iter().map(|&v| f(v)).collect();
        assert_close(&got, &expected, 1e-6, &format!("{act:?}"));
    }
}

#[test]
fn gated_feed_forward_product_and_residual_add() {
    let gpu = gpu();
    let mut rng = rng(7);
    for (rows, width) in [(1, 1), (3, 17), (65, 129)] {
        let x = random_vec(&mut rng, rows * 2 * width, 4.0);
        let xt = upload(&gpu, &x, &[rows, 2 * width]);
        let y = zeros(&gpu, &[rows, width]);
        run(&gpu, |rec| ops::gated(rec, &xt, &y, Activation::GeluTanh));
        let expected: Vec<f32> = (0..rows * width)
            .map(|i| {
                let (r, c) = (i / width, i % width);
                cpu::gelu_tanh(x[r * 2 * width + c]) * x[r * 2 * width + width + c]
            })
            .collect();
        assert_close(
            &read(&gpu, &y),
            &expected,
            1e-6,
            &format!("gated {rows}x{width}"),
        );

        let a = random_vec(&mut rng, rows * width, 1.0);
        let b = random_vec(&mut rng, rows * width, 1.0);
        let (at, bt) = (
            upload(&gpu, &a, &[rows, width]),
            upload(&gpu, &b, &[rows, width]),
        );
        run(&gpu, |rec| ops::add(rec, &at, &bt));
        let sum: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        assert_close(&read(&gpu, &bt), &sum, 0.0, "add");
    }
}

#[test]
fn embedding_lookup_scales_rows_and_adds_positions() {
    let gpu = gpu();
    let mut rng = rng(8);
    for (vocab, dim) in [(1, 1), (17, 63), (129, 65), (300, 257)] {
        let table = random_vec(&mut rng, vocab * dim, 1.0);
        let position_table = random_vec(&mut rng, 12 * dim, 1.0);
        let ids: Vec<u32> = (0..5).map(|i| ((i * 7919) % vocab) as u32).collect();
        let tt = upload(&gpu, &table, &[vocab, dim]);
        let pt = upload(&gpu, &position_table, &[12, dim]);
        let it = Tensor::upload_u32(&gpu, "ids", &ids, &[ids.len()]).unwrap();
        let out = zeros(&gpu, &[ids.len(), dim]);
        let (table, position_table, ids) = (&table, &position_table, &ids);
        let lookup = |first_position: Option<usize>| -> Vec<f32> {
            let mut expected = Vec::new();
            for (r, &id) in ids.iter().enumerate() {
                for c in 0..dim {
                    let position =
                        first_position.map_or(0.0, |p| position_table[(p + r) * dim + c]);
                    expected.push(table[id as usize * dim + c] * 2.5 + position);
                }
            }
            expected
        };
        run(&gpu, |rec| ops::embedding(rec, &it, &tt, 2.5, None, &out));
        assert_close(
            &read(&gpu, &out),
            &lookup(None),
            0.0,
            &format!("embedding {vocab}x{dim}"),
        );

        let positions = ops::Positions {
            table: &pt,
            offset: 2,
            from_step: false,
            rows_per_sequence: ids.len(),
        };
        run(&gpu, |rec| {
            ops::embedding(rec, &it, &tt, 2.5, Some(positions), &out)
        });
        assert_close(&read(&gpu, &out), &lookup(Some(2)), 0.0, "with positions");

        let positions = ops::Positions {
            table: &pt,
            offset: 2,
            from_step: true,
            rows_per_sequence: ids.len(),
        };
        run_at_step(&gpu, 4, |rec| {
            ops::embedding(rec, &it, &tt, 2.5, Some(positions), &out)
        });
        assert_close(
            &read(&gpu, &out),
            &lookup(Some(6)),
            0.0,
            "with positions after the step",
        );
    }
}

#[test]
fn argmax_picks_the_first_maximum() {
    let gpu = gpu();
    let mut rng = rng(9);
    for cols in AWKWARD_SIZES.iter().copied().chain([32128]) {
        let rows = 3;
        let mut x = random_vec(&mut rng, rows * cols, 1.0);
        // Row 1 has a tie between a later and an earlier position: the earlier must win.
        if cols >= 3 {
            x[cols + cols - 1] = 5.0;
            x[cols + 1] = 5.0;
        }
        let xt = upload(&gpu, &x, &[rows, cols]);
        let ids = Tensor::upload_u32(&gpu, "ids", &[0; 3], &[rows]).unwrap();
        run(&gpu, |rec| ops::argmax(rec, &xt, &ids, None));
        assert_eq!(
            read_u32(&gpu, &ids),
            cpu::argmax(&x, cols),
            "argmax cols={cols}"
        );
        // A shortlist: column c stands for token id 7c + 2.
        let vocabulary: Vec<u32> = (0..cols as u32).map(|c| 7 * c + 2).collect();
        let vt = Tensor::upload_u32(&gpu, "vocabulary", &vocabulary, &[cols]).unwrap();
        run(&gpu, |rec| ops::argmax(rec, &xt, &ids, Some(&vt)));
        let mapped: Vec<u32> = cpu::argmax(&x, cols)
            .iter()
            .map(|&c| vocabulary[c as usize])
            .collect();
        assert_eq!(read_u32(&gpu, &ids), mapped, "mapped argmax cols={cols}");
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

#[test]
fn kv_append_writes_each_sequence_after_the_step_position() {
    let gpu = gpu();
    let mut rng = rng(12);
    let (sequences, capacity, width, src_width) = (3, 6, 5, 20);
    let cache_init = random_vec(&mut rng, sequences * capacity * width, 1.0);
    let src = random_vec(&mut rng, sequences * src_width, 1.0);
    let cache = upload(&gpu, &cache_init, &[sequences * capacity, width]);
    let st = upload(&gpu, &src, &[sequences, src_width]);
    run_at_step(&gpu, 4, |rec| {
        ops::kv_cache::append(rec, st.matrix().columns(7, width), &cache, 1, capacity)
    });
    let mut expected = cache_init.clone();
    for seq in 0..sequences {
        expected[(seq * capacity + 4) * width..][..width]
            .copy_from_slice(&src[seq * src_width + 7..][..width]);
    }
    assert_eq!(read(&gpu, &cache), expected);
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

/// Several tokens in one step from a fresh state (stale values in the state buffer must not
/// leak in at position 0), then one more token at a later position continuing the state.
#[test]
fn ssru_carries_state_across_tokens_and_steps() {
    let gpu = gpu();
    let mut rng = rng(6);
    let (sequences, dim, first) = (3, 37, 4);
    let stale = random_vec(&mut rng, sequences * dim, 5.0);
    let state = upload(&gpu, &stale, &[sequences, dim]);
    let mut expected_state = vec![vec![0.0f32; dim]; sequences];
    for (tokens, pos) in [(first, 0), (1, first as u32)] {
        let gates = random_vec(&mut rng, sequences * tokens * 2 * dim, 3.0);
        let x = random_vec(&mut rng, sequences * tokens * dim, 1.0);
        let (gt, hidden) = (
            upload(&gpu, &gates, &[sequences * tokens, 2 * dim]),
            upload(&gpu, &x, &[sequences * tokens, dim]),
        );
        run_at_step(&gpu, pos, |rec| {
            ops::ssru(rec, &gt, &state, &hidden, tokens)
        });
        let expected: Vec<f32> = (0..sequences)
            .flat_map(|s| {
                cpu::ssru(
                    &gates[s * tokens * 2 * dim..][..tokens * 2 * dim],
                    &x[s * tokens * dim..][..tokens * dim],
                    &mut expected_state[s],
                    tokens,
                )
            })
            .collect();
        assert_close(
            &read(&gpu, &hidden),
            &expected,
            1e-6,
            &format!("ssru {tokens} tokens at {pos}"),
        );
        assert_close(
            &read(&gpu, &state),
            &expected_state.concat(),
            1e-6,
            "ssru state",
        );
    }
}

/// Rows picked from a matrix in each encoding (a shortlist's output layer) multiply as the
/// same rows of the original.
#[test]
fn gathered_rows_keep_values_and_int8_scales() {
    let gpu = gpu();
    let mut rng = rng(7);
    let (n, k, m) = (40, 16, 2);
    let picked: Vec<u32> = vec![3, 0, 39, 7, 7];
    let w = random_vec(&mut rng, n * k, 1.0);
    let q: Vec<i8> = w.iter().map(|v| (v * 127.0).round() as i8).collect();
    let scales: Vec<f32> = (0..n).map(|r| 0.01 * (r + 1) as f32).collect();
    let tables = [
        (upload(&gpu, &w, &[n, k]), w.clone()),
        (
            Tensor::upload_f16(&gpu, "w", &w, &[n, k]).unwrap(),
            w.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect(),
        ),
        (
            Tensor::upload_int8(&gpu, "w", &q, &scales, &[n, k]).unwrap(),
            q.iter()
                .enumerate()
                .map(|(i, &v)| v as f32 * scales[i / k])
                .collect(),
        ),
    ];
    let x = random_vec(&mut rng, m * k, 1.0);
    let xt = upload(&gpu, &x, &[m, k]);
    let ids = Tensor::upload_u32(&gpu, "ids", &picked, &[picked.len()]).unwrap();
    for (table, values) in &tables {
        let mut ws = seq2seq_gpu::gpu::Workspace::new(gpu.clone());
        let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
        let gathered = ops::gather_rows(&mut rec, &mut ws, table, &ids).unwrap();
        rec.finish().unwrap().submit(&gpu);
        let out = zeros(&gpu, &[m, picked.len()]);
        run(&gpu, |rec| {
            ops::linear(
                rec,
                xt.matrix(),
                &gathered,
                None,
                out.matrix(),
                Epilogue::default(),
            )
        });
        let rows: Vec<f32> = picked
            .iter()
            .flat_map(|&r| values[r as usize * k..][..k].to_vec())
            .collect();
        let expected = cpu::linear(&x, &rows, None, m, picked.len(), k);
        assert_close(
            &read(&gpu, &out),
            &expected,
            1e-5,
            &format!("gathered {:?}", table.encoding),
        );
    }
}
