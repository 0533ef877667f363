//! `linear`: f32, f16 and int8 weights, the epilogue, column slices, every kernel form, shape
//! checks, and weights in row blocks.

use crate::common::reference as cpu;
use crate::common::*;
use crate::{ACTIVATIONS, row_blocks, upload, zeros};
use seq2seq_gpu::gpu::{RowBlocks, Tensor};
use seq2seq_gpu::ops::{self, Epilogue};

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
                // A soft cap (Gemma's logits) with every other product.
                let softcap = (!accumulate).then_some(0.6);
                let epilogue = Epilogue {
                    activation: act,
                    alpha: 0.37,
                    accumulate,
                    softcap,
                };
                run(&gpu, |rec| {
                    ops::linear(rec, xt.matrix(), &wt, Some(&bt), out.matrix(), epilogue)
                });
                let cap = |v: f32| softcap.map_or(v, |c| (v / c).tanh() * c);
                let expected: Vec<f32> = cpu::linear(&x, &w, Some(&b), m, n, k)
                    .iter()
                    .zip(&prior)
                    .map(|(v, p)| cap(0.37 * f(*v)) + if accumulate { *p } else { 0.0 })
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
        MatmulForm::SkinnyNarrow,
        MatmulForm::SkinnyNarrowVec4,
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
    // A typed shape error naming the op, what it needs and what it got.
    let seq2seq_gpu::Error::Shape {
        op,
        expected,
        found,
    } = &err
    else {
        panic!("not a shape error: {err}");
    };
    assert_eq!(*op, "linear");
    assert!(
        expected.contains("x 3x6") && found.contains("x 3x4"),
        "{err}"
    );
}

/// A weight in row blocks (one larger than the binding limit) computes the same columns as
/// in one buffer, its bias split with it, overwriting or accumulating.
#[test]
fn weights_in_row_blocks_compute_the_same_columns() {
    let gpu = gpu();
    let mut rng = rng(21);
    let (n, k) = (37, 20);
    let w = random_vec(&mut rng, n * k, 1.0);
    let bias = random_vec(&mut rng, n, 1.0);
    let edges = [10, 11, 30];
    let whole = (
        RowBlocks::one(upload(&gpu, &w, &[n, k])),
        RowBlocks::one(upload(&gpu, &bias, &[n])),
    );
    let split = (
        row_blocks([n, k], &edges, |r| {
            upload(&gpu, &w[r.start * k..r.end * k], &[r.len(), k])
        }),
        row_blocks([n, 1], &edges, |r| {
            upload(&gpu, &bias[r.clone()], &[r.len()])
        }),
    );
    for m in [1, 9] {
        let x = random_vec(&mut rng, m * k, 1.0);
        let xt = upload(&gpu, &x, &[m, k]);
        let start = random_vec(&mut rng, m * n, 1.0);
        for accumulate in [false, true] {
            let epilogue = Epilogue {
                accumulate,
                ..Epilogue::default()
            };
            let outputs: Vec<Vec<f32>> = [&whole, &split]
                .iter()
                .map(|(weight, bias)| {
                    let out = upload(&gpu, &start, &[m, n]);
                    run(&gpu, |rec| {
                        ops::linear_blocks(
                            rec,
                            xt.matrix(),
                            weight,
                            Some(bias),
                            out.matrix(),
                            epilogue,
                        )
                    });
                    read(&gpu, &out)
                })
                .collect();
            assert_eq!(outputs[0], outputs[1], "m {m}, accumulate {accumulate}");
            let mut expected = cpu::linear(&x, &w, Some(&bias), m, n, k);
            if accumulate {
                expected.iter_mut().zip(&start).for_each(|(e, s)| *e += s);
            }
            assert_close(&outputs[0], &expected, 1e-5, "blocked linear");
        }
    }
    // A bias must be split as its weight is.
    let out = zeros(&gpu, &[1, n]);
    let x = zeros(&gpu, &[1, k]);
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    let unaligned = ops::linear_blocks(
        &mut rec,
        x.matrix(),
        &split.0,
        Some(&whole.1),
        out.matrix(),
        Epilogue::default(),
    )
    .unwrap_err();
    assert!(unaligned.to_string().contains("bias blocks"), "{unaligned}");
}
