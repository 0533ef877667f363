//! `linear_fused`: the decode matmul with an input norm, a gated activation and the KV-cache
//! append folded in, against the separate CPU steps, over every weight encoding.

use std::sync::Arc;

use crate::common::reference as cpu;
use crate::common::*;
use crate::{ACTIVATIONS, norm, upload, weight, zeros};
use seq2seq_gpu::gpu::{Gpu, GpuOptions, RowBlocks};
use seq2seq_gpu::ops::{self, CacheAppend, Epilogue, Fusion, NormKind, Residual};

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
                        let (xt, lt) = (upload(gpu, &x, &[m, wide]), upload(gpu, &b, &[n]));
                        let out = upload(gpu, &prior, &[m, n]);
                        let norm = norm(gpu, kind, &gamma, &beta, 1e-5);
                        let epilogue = Epilogue {
                            activation: act,
                            alpha: 0.37,
                            accumulate: true,
                            softcap: None,
                        };
                        let fusion = Fusion {
                            norm: Some(&norm),
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
                let (xt, bt) = (upload(&gpu, &x, &[m, k]), upload(&gpu, &b, &[2 * n]));
                let out = zeros(&gpu, &[m, n]);
                let rms = norm(&gpu, NormKind::RmsNorm, &gamma, &[], 1e-6);
                let fusion = Fusion {
                    norm: Some(&rms),
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
            pages: None,
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
    let short = norm(&gpu, NormKind::RmsNorm, &[1.0; 15], &[], 1e-5);
    let fits = norm(&gpu, NormKind::RmsNorm, &[1.0; 16], &[], 1e-5);
    let input_norm = |norm| Fusion {
        norm: Some(norm),
        ..Fusion::default()
    };
    assert!(refuse(&mut rec, x, two.matrix(), input_norm(&short)));
    assert!(!refuse(&mut rec, x, two.matrix(), input_norm(&fits)));
    // The residual is [rows, n] in another buffer, normalised over n (6 values here).
    let stream = zeros(&gpu, &[2, 6]);
    let residual = |stream, norm| Fusion {
        residual: Some(Residual { stream, norm }),
        ..Fusion::default()
    };
    let over_n = norm(&gpu, NormKind::RmsNorm, &[1.0; 6], &[], 1e-5);
    assert!(!refuse(
        &mut rec,
        x,
        two.matrix(),
        residual(&stream, Some(&over_n))
    ));
    assert!(refuse(
        &mut rec,
        x,
        two.matrix(),
        residual(&stream, Some(&fits))
    ));
    assert!(refuse(&mut rec, x, two.matrix(), residual(&two, None)));
    assert!(refuse(&mut rec, x, two.matrix(), residual(&nine, None)));
    let both_norms = Fusion {
        norm: Some(&fits),
        ..residual(&stream, Some(&over_n))
    };
    assert!(refuse(&mut rec, x, two.matrix(), both_norms));
    // The one norm binding would describe the residual, not the input.
    let input_norm_and_plain_residual = Fusion {
        norm: Some(&fits),
        ..residual(&stream, None)
    };
    assert!(refuse(
        &mut rec,
        x,
        two.matrix(),
        input_norm_and_plain_residual
    ));
    let (half_stream, half_out) = (zeros(&gpu, &[2, 3]), zeros(&gpu, &[2, 3]));
    let gated_residual = Fusion {
        gated: true,
        ..residual(&half_stream, None)
    };
    assert!(refuse(&mut rec, x, half_out.matrix(), gated_residual));
    let accumulating = Epilogue {
        accumulate: true,
        ..Epilogue::default()
    };
    let fusion = residual(&stream, None);
    assert!(ops::linear_fused(&mut rec, x, &w, None, two.matrix(), accumulating, fusion).is_err());
    // An SSRU cell pairs a square weight's halves: 6 rows of 16 inputs is no cell.
    let state = zeros(&gpu, &[2, 3]);
    let ssru = Fusion {
        ssru: Some(&state),
        ..Fusion::default()
    };
    let three = zeros(&gpu, &[2, 3]);
    assert!(refuse(&mut rec, x, three.matrix(), ssru));
    let gated_ssru = Fusion {
        gated: true,
        ..ssru
    };
    assert!(refuse(&mut rec, x, three.matrix(), gated_ssru));
    let cache = zeros(&gpu, &[5, 4]);
    let append = Fusion {
        append: Some(CacheAppend {
            cache: &cache,
            split: 2,
            rows_per_sequence: 1,
            capacity: 3,
            pages: None,
        }),
        ..Fusion::default()
    };
    // 2 sequences of 3 cache rows are 6 rows, not 5.
    assert!(refuse(&mut rec, x, two.matrix(), append));
    let cache = zeros(&gpu, &[6, 4]);
    let append = CacheAppend {
        cache: &cache,
        split: 2,
        rows_per_sequence: 1,
        capacity: 3,
        pages: None,
    };
    let append_and_residual = Fusion {
        append: Some(append),
        ..residual(&stream, None)
    };
    assert!(!refuse(
        &mut rec,
        x,
        two.matrix(),
        Fusion {
            append: Some(append),
            ..Fusion::default()
        }
    ));
    assert!(refuse(&mut rec, x, two.matrix(), append_and_residual));
}

/// A post-norm residual: out = alpha * act(x · Wᵀ + b) + norm(stream), the stream's norm
/// (RMSNorm, LayerNorm or none) applied as the kernel reads it, into another buffer.
#[test]
fn fused_linear_adds_a_normalised_residual() {
    let gpu = gpu();
    let mut rng = rng(34);
    for encoding in ["f32", "f16", "int8"] {
        for kind in [None, Some(NormKind::RmsNorm), Some(NormKind::LayerNorm)] {
            for (m, n, k) in [(1, 65, 64), (3, 6, 132), (8, 130, 8)] {
                let x = random_vec(&mut rng, m * k, 1.0);
                // A large mean, which a one-pass variance would lose.
                let stream: Vec<f32> = random_vec(&mut rng, m * n, 2.0)
                    .iter()
                    .map(|v| v + 20.0)
                    .collect();
                let gamma = random_vec(&mut rng, n, 1.0);
                let beta = random_vec(&mut rng, n, 1.0);
                let b = random_vec(&mut rng, n, 1.0);
                let w = random_vec(&mut rng, n * k, 1.0);
                let (wt, values) = weight(&gpu, encoding, &w, n, k);
                let (xt, bt) = (upload(&gpu, &x, &[m, k]), upload(&gpu, &b, &[n]));
                let st = upload(&gpu, &stream, &[m, n]);
                let out = upload(&gpu, &vec![7.0; m * n], &[m, n]);
                let norm = kind.map(|kind| norm(&gpu, kind, &gamma, &beta, 1e-5));
                let fusion = Fusion {
                    residual: Some(Residual {
                        stream: &st,
                        norm: norm.as_ref(),
                    }),
                    ..Fusion::default()
                };
                let epilogue = Epilogue {
                    activation: ops::Activation::Relu,
                    alpha: 0.5,
                    accumulate: false,
                    softcap: None,
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
                let residual = match kind {
                    None => stream.clone(),
                    Some(NormKind::RmsNorm) => cpu::rms_norm(&stream, &gamma, 1e-5),
                    Some(NormKind::LayerNorm) => cpu::layer_norm(&stream, &gamma, &beta, 1e-5),
                };
                let expected: Vec<f32> = cpu::linear(&x, &values, Some(&b), m, n, k)
                    .iter()
                    .zip(&residual)
                    .map(|(v, r)| 0.5 * cpu::relu(*v) + r)
                    .collect();
                let what = format!("residual {encoding} {kind:?} {m}x{n}x{k}");
                assert_close(&read(&gpu, &out), &expected, 2e-5, &what);
                // The stream is only read.
                assert_eq!(read(&gpu, &st), stream, "{what}: stream");
            }
        }
    }
}

/// An SSRU cell on the paired projection of its (normalised) input: the state carries c
/// from step to step and restarts at position 0; out = relu(c) + norm(x).
#[test]
fn fused_linear_runs_an_ssru_cell() {
    let gpu = gpu();
    let mut rng = rng(35);
    for encoding in ["f32", "int8"] {
        for kind in [None, Some(NormKind::RmsNorm), Some(NormKind::LayerNorm)] {
            for (m, d) in [(1, 8), (3, 68), (8, 132)] {
                let gamma = random_vec(&mut rng, d, 1.0);
                let beta = random_vec(&mut rng, d, 1.0);
                let norm = kind.map(|kind| norm(&gpu, kind, &gamma, &beta, 1e-5));
                let w = random_vec(&mut rng, 2 * d * d, 0.5);
                let (wt, values) = weight(&gpu, encoding, &w, 2 * d, d);
                let mut b = vec![0.0; d];
                b.extend(random_vec(&mut rng, d, 1.0));
                let bt = upload(&gpu, &b, &[2 * d]);
                let prior = random_vec(&mut rng, m * d, 1.0);
                let state = upload(&gpu, &prior, &[m, d]);
                let mut c = prior.clone();
                for pos in [0u32, 1, 5] {
                    let x: Vec<f32> = random_vec(&mut rng, m * d, 1.0)
                        .iter()
                        .map(|v| v + 3.0)
                        .collect();
                    let xt = upload(&gpu, &x, &[m, d]);
                    let out = zeros(&gpu, &[m, d]);
                    let fusion = Fusion {
                        norm: norm.as_ref(),
                        ssru: Some(&state),
                        ..Fusion::default()
                    };
                    run_at_step(&gpu, pos, |rec| {
                        ops::linear_fused(
                            rec,
                            xt.matrix(),
                            &wt,
                            Some(&bt),
                            out.matrix(),
                            Epilogue::default(),
                            fusion,
                        )
                    });
                    let normed = match kind {
                        None => x.clone(),
                        Some(NormKind::RmsNorm) => cpu::rms_norm(&x, &gamma, 1e-5),
                        Some(NormKind::LayerNorm) => cpu::layer_norm(&x, &gamma, &beta, 1e-5),
                    };
                    let gates = cpu::linear(&normed, &values, Some(&b), m, 2 * d, d);
                    if pos == 0 {
                        c.fill(0.0);
                    }
                    let mut expected = Vec::new();
                    for r in 0..m {
                        let row = &mut c[r * d..(r + 1) * d];
                        let rows = &gates[r * 2 * d..(r + 1) * 2 * d];
                        expected.extend(cpu::ssru(rows, &normed[r * d..(r + 1) * d], row, 1));
                    }
                    let what = format!("ssru {encoding} {kind:?} {m}x{d} at {pos}");
                    assert_close(&read(&gpu, &out), &expected, 2e-5, &what);
                    assert_close(&read(&gpu, &state), &c, 2e-5, &format!("{what}: state"));
                }
            }
        }
    }
}

/// The SSRU cell has its own output: an activation, a scale or a soft cap with it is
/// refused rather than ignored.
#[test]
fn fused_ssru_refuses_an_epilogue_of_its_own() {
    let gpu = gpu();
    let (x, w, out, state) = (
        zeros(&gpu, &[1, 8]),
        zeros(&gpu, &[16, 8]),
        zeros(&gpu, &[1, 8]),
        zeros(&gpu, &[1, 8]),
    );
    let fusion = Fusion {
        ssru: Some(&state),
        ..Fusion::default()
    };
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    let record = |rec: &mut _, epilogue| {
        ops::linear_fused(rec, x.matrix(), &w, None, out.matrix(), epilogue, fusion)
    };
    assert!(record(&mut rec, Epilogue::default()).is_ok());
    for epilogue in [
        Epilogue {
            activation: ops::Activation::Relu,
            ..Epilogue::default()
        },
        Epilogue {
            alpha: 2.0,
            ..Epilogue::default()
        },
        Epilogue {
            softcap: Some(3.0),
            ..Epilogue::default()
        },
    ] {
        assert!(record(&mut rec, epilogue).is_err(), "{epilogue:?}");
    }
}
