//! `linear_fused`: the decode matmul with an input norm, a gated activation and the KV-cache
//! append folded in, against the separate CPU steps, over every weight encoding.

use std::sync::Arc;

use crate::common::reference as cpu;
use crate::common::*;
use crate::{ACTIVATIONS, upload, zeros};
use seq2seq_gpu::gpu::{Gpu, GpuOptions, RowBlocks, Tensor};
use seq2seq_gpu::ops::{self, CacheAppend, Epilogue, Fusion, InputNorm, NormKind};

/// A weight [n, k] in one encoding, and the f32 values the kernel computes with.
fn weight(gpu: &Gpu, encoding: &str, w: &[f32], n: usize, k: usize) -> (Tensor, Vec<f32>) {
    match encoding {
        "f32" => (upload(gpu, w, &[n, k]), w.to_vec()),
        "f16" => {
            let t = Tensor::upload_f16(gpu, "w", w, &[n, k]).unwrap();
            let rounded = w.iter().map(|v| half::f16::from_f32(*v).to_f32());
            (t, rounded.collect())
        }
        _ => {
            let q: Vec<i8> = w.iter().map(|v| (v * 127.0).round() as i8).collect();
            let scales: Vec<f32> = (0..n).map(|r| 0.01 + r as f32 * 1e-3).collect();
            let t = Tensor::upload_int8(gpu, "w", &q, &scales, &[n, k]).unwrap();
            let values = q.iter().enumerate().map(|(i, &v)| v as f32 * scales[i / k]);
            (t, values.collect())
        }
    }
}

fn packed_f16() -> Arc<Gpu> {
    let options = GpuOptions {
        shader_f16: false,
        ..Default::default()
    };
    pollster::block_on(Gpu::with_options(options)).unwrap()
}

/// RMSNorm and LayerNorm of the rows (a column slice of a wider buffer), then the layer
/// with bias, activation, scale and accumulation, for each encoding and row count.
#[test]
fn fused_linear_normalises_its_input_rows() {
    let devices = [gpu(), packed_f16()];
    let mut rng = rng(31);
    for (device, gpu) in devices.iter().enumerate() {
        let encodings: &[&str] = if device == 0 {
            &["f32", "f16", "int8"]
        } else {
            &["f16"]
        };
        for &encoding in encodings {
            for kind in [NormKind::RmsNorm, NormKind::LayerNorm] {
                for (m, n, k) in [(1, 65, 64), (3, 3, 132), (8, 130, 8)] {
                    for (act, f) in ACTIVATIONS {
                        let wide = k + 12;
                        // A large mean, which a one-pass variance would lose.
                        let x: Vec<f32> = random_vec(&mut rng, m * wide, 1.0)
                            .iter()
                            .map(|v| v + 3.0)
                            .collect();
                        let gamma = random_vec(&mut rng, k, 1.0);
                        let beta = random_vec(&mut rng, k, 1.0);
                        let b = random_vec(&mut rng, n, 1.0);
                        let prior = random_vec(&mut rng, m * n, 1.0);
                        let w = random_vec(&mut rng, n * k, 1.0);
                        let (wt, values) = weight(gpu, encoding, &w, n, k);
                        let (xt, gt, bt, lt) = (
                            upload(gpu, &x, &[m, wide]),
                            upload(gpu, &gamma, &[k]),
                            upload(gpu, &beta, &[k]),
                            upload(gpu, &b, &[n]),
                        );
                        let out = upload(gpu, &prior, &[m, n]);
                        let norm = InputNorm {
                            kind,
                            weight: &gt,
                            bias: Some(&bt),
                            eps: 1e-5,
                        };
                        let epilogue = Epilogue {
                            activation: act,
                            alpha: 0.37,
                            accumulate: true,
                        };
                        let fusion = Fusion {
                            norm: Some(norm),
                            ..Fusion::default()
                        };
                        let x_view = xt.matrix().columns(8, k);
                        run(gpu, |rec| {
                            ops::linear_fused(
                                rec,
                                x_view,
                                &wt,
                                Some(&lt),
                                out.matrix(),
                                epilogue,
                                fusion,
                            )
                        });
                        let rows: Vec<f32> =
                            x.chunks(wide).flat_map(|r| r[8..8 + k].to_vec()).collect();
                        let normed = match kind {
                            NormKind::RmsNorm => cpu::rms_norm(&rows, &gamma, 1e-5),
                            NormKind::LayerNorm => cpu::layer_norm(&rows, &gamma, &beta, 1e-5),
                        };
                        let expected: Vec<f32> = cpu::linear(&normed, &values, Some(&b), m, n, k)
                            .iter()
                            .zip(&prior)
                            .map(|(v, p)| 0.37 * f(*v) + p)
                            .collect();
                        assert_close(
                            &read(gpu, &out),
                            &expected,
                            2e-5,
                            &format!("{encoding} {kind:?} {act:?} {m}x{n}x{k} (device {device})"),
                        );
                    }
                }
            }
        }
    }
}

/// out[:, c] = act(x · gate_c + b_c) * (x · linear_c + b_{n+c}), with an RMSNorm input.
#[test]
fn fused_linear_applies_a_gated_activation() {
    let gpu = gpu();
    let mut rng = rng(32);
    for encoding in ["f32", "f16", "int8"] {
        for (m, n, k) in [(1, 5, 64), (4, 33, 16), (8, 1, 132)] {
            for (act, f) in ACTIVATIONS {
                let x = random_vec(&mut rng, m * k, 1.0);
                let gamma = random_vec(&mut rng, k, 1.0);
                let w = random_vec(&mut rng, 2 * n * k, 1.0);
                let b = random_vec(&mut rng, 2 * n, 1.0);
                let (wt, values) = weight(&gpu, encoding, &w, 2 * n, k);
                let (xt, gt, bt) = (
                    upload(&gpu, &x, &[m, k]),
                    upload(&gpu, &gamma, &[k]),
                    upload(&gpu, &b, &[2 * n]),
                );
                let out = zeros(&gpu, &[m, n]);
                let fusion = Fusion {
                    norm: Some(InputNorm {
                        kind: NormKind::RmsNorm,
                        weight: &gt,
                        bias: None,
                        eps: 1e-6,
                    }),
                    gated: true,
                    ..Fusion::default()
                };
                let epilogue = Epilogue {
                    activation: act,
                    ..Epilogue::default()
                };
                run(&gpu, |rec| {
                    ops::linear_fused(
                        rec,
                        xt.matrix(),
                        &wt,
                        Some(&bt),
                        out.matrix(),
                        epilogue,
                        fusion,
                    )
                });
                let normed = cpu::rms_norm(&x, &gamma, 1e-6);
                let both = cpu::linear(&normed, &values, Some(&b), m, 2 * n, k);
                let expected: Vec<f32> = (0..m * n)
                    .map(|i| {
                        let (r, c) = (i / n, i % n);
                        f(both[r * 2 * n + c]) * both[r * 2 * n + n + c]
                    })
                    .collect();
                assert_close(
                    &read(&gpu, &out),
                    &expected,
                    2e-5,
                    &format!("gated {encoding} {act:?} {m}x{n}x{k}"),
                );
            }
        }
    }
}

/// The query columns land in `out`, the key and value columns in each sequence's cache
/// rows after the step position, and nothing else changes.
#[test]
fn fused_linear_appends_keys_and_values_to_the_cache() {
    let gpu = gpu();
    let mut rng = rng(33);
    let (inner, k, capacity) = (8, 16, 9);
    for (sequences, tokens) in [(1, 1), (3, 1), (2, 3), (1, 8)] {
        let m = sequences * tokens;
        let n = 3 * inner;
        let x = random_vec(&mut rng, m * k, 1.0);
        let w = random_vec(&mut rng, n * k, 1.0);
        let cache_init = random_vec(&mut rng, sequences * capacity * 2 * inner, 1.0);
        let out_init = random_vec(&mut rng, m * n, 1.0);
        let (xt, wt) = (upload(&gpu, &x, &[m, k]), upload(&gpu, &w, &[n, k]));
        let cache = upload(&gpu, &cache_init, &[sequences * capacity, 2 * inner]);
        let out = upload(&gpu, &out_init, &[m, n]);
        let append = CacheAppend {
            cache: &cache,
            split: inner,
            rows_per_sequence: tokens,
            capacity,
        };
        let fusion = Fusion {
            append: Some(append),
            ..Fusion::default()
        };
        let pos = capacity - tokens;
        run_at_step(&gpu, pos as u32, |rec| {
            ops::linear_fused(
                rec,
                xt.matrix(),
                &wt,
                None,
                out.matrix(),
                Epilogue::default(),
                fusion,
            )
        });
        let product = cpu::linear(&x, &w, None, m, n, k);
        let (mut expected_out, mut expected_cache) = (out_init.clone(), cache_init.clone());
        for row in 0..m {
            let (seq, t) = (row / tokens, row % tokens);
            expected_out[row * n..][..inner].copy_from_slice(&product[row * n..][..inner]);
            let cache_row = seq * capacity + pos + t;
            expected_cache[cache_row * 2 * inner..][..2 * inner]
                .copy_from_slice(&product[row * n + inner..][..2 * inner]);
        }
        let what = format!("{sequences} sequences of {tokens}");
        assert_close(&read(&gpu, &out), &expected_out, 1e-5, &what);
        assert_close(&read(&gpu, &cache), &expected_cache, 1e-5, &what);
    }
}

/// Inputs the kernel cannot take are refused, and `fusable` says so beforehand.
#[test]
fn fused_linear_refuses_what_it_cannot_fuse() {
    let gpu = gpu();
    let w = zeros(&gpu, &[6, 16]);
    let blocks = RowBlocks::one(w.clone());
    let nine = zeros(&gpu, &[9, 16]);
    let wide = zeros(&gpu, &[2, 20]);
    let out = zeros(&gpu, &[9, 6]);
    assert!(!ops::fusable(nine.matrix(), &blocks));
    assert!(!ops::fusable(wide.matrix().columns(1, 16), &blocks));
    assert!(ops::fusable(wide.matrix().columns(0, 16), &blocks));
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    let refuse = |rec: &mut _, x, out, fusion| {
        ops::linear_fused(rec, x, &w, None, out, Epilogue::default(), fusion).is_err()
    };
    assert!(refuse(
        &mut rec,
        nine.matrix(),
        out.matrix(),
        Fusion::default()
    ));
    let two = zeros(&gpu, &[2, 6]);
    let x = wide.matrix().columns(0, 16);
    let gated = Fusion {
        gated: true,
        ..Fusion::default()
    };
    // Gated, a weight of 6 rows makes 3 columns, not 6.
    assert!(refuse(&mut rec, x, two.matrix(), gated));
    let short = zeros(&gpu, &[15]);
    let norm = Fusion {
        norm: Some(InputNorm {
            kind: NormKind::LayerNorm,
            weight: &short,
            bias: None,
            eps: 1e-5,
        }),
        ..Fusion::default()
    };
    assert!(refuse(&mut rec, x, two.matrix(), norm));
    let cache = zeros(&gpu, &[5, 4]);
    let append = Fusion {
        append: Some(CacheAppend {
            cache: &cache,
            split: 2,
            rows_per_sequence: 1,
            capacity: 3,
        }),
        ..Fusion::default()
    };
    // 2 sequences of 3 cache rows are 6 rows, not 5.
    assert!(refuse(&mut rec, x, two.matrix(), append));
}
