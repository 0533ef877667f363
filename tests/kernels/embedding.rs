//! `embedding`: scaled row lookup, with and without position rows (fixed offset and from the
//! step), from f32, f16 (native and packed) and int8 tables, in one buffer and in row blocks.

use std::ops::Range;
use std::sync::Arc;

use crate::common::*;
use crate::{row_blocks, upload, zeros};
use seq2seq_gpu::gpu::writer::quantize_rows;
use seq2seq_gpu::gpu::{Gpu, GpuOptions, RowBlocks, Tensor};
use seq2seq_gpu::ops;

/// Uploads rows of a table in one encoding.
type BlockUpload = Box<dyn Fn(&Gpu, Range<usize>) -> Tensor>;

/// A table in one encoding: how to upload a block of its rows, and the values it then holds.
struct Encoded {
    name: &'static str,
    upload: BlockUpload,
    values: Vec<f32>,
}

/// `table` [vocab, dim] as f32, f16 and int8 (quantised per row, so a block's rows keep
/// their scales).
fn encodings(table: &[f32], dim: usize) -> Vec<Encoded> {
    let rows = move |r: &Range<usize>| r.start * dim..r.end * dim;
    let (q, scales) = quantize_rows(table, dim);
    let int8_values = q
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f32 * scales[i / dim])
        .collect();
    let f32_table = table.to_vec();
    let f16_table = table.to_vec();
    vec![
        Encoded {
            name: "f32",
            upload: Box::new(move |gpu, r| {
                Tensor::upload_f32(gpu, "t", &f32_table[rows(&r)], &[r.len(), dim]).unwrap()
            }),
            values: table.to_vec(),
        },
        Encoded {
            name: "f16",
            upload: Box::new(move |gpu, r| {
                Tensor::upload_f16(gpu, "t", &f16_table[rows(&r)], &[r.len(), dim]).unwrap()
            }),
            values: table
                .iter()
                .map(|v| half::f16::from_f32(*v).to_f32())
                .collect(),
        },
        Encoded {
            name: "int8",
            upload: Box::new(move |gpu, r| {
                Tensor::upload_int8(gpu, "t", &q[rows(&r)], &scales[r.clone()], &[r.len(), dim])
                    .unwrap()
            }),
            values: int8_values,
        },
    ]
}

#[test]
fn embedding_lookup_scales_rows_and_adds_positions() {
    let packed = pollster::block_on(Gpu::with_options(GpuOptions {
        shader_f16: false,
        ..Default::default()
    }))
    .unwrap();
    assert!(!packed.native_f16());
    check_lookups(&gpu());
    check_lookups(&packed);
}

fn check_lookups(gpu: &Arc<Gpu>) {
    let mut rng = rng(8);
    for (vocab, dim) in [(1, 1), (17, 63), (129, 65), (300, 257)] {
        let table = random_vec(&mut rng, vocab * dim, 1.0);
        let position_table = random_vec(&mut rng, 12 * dim, 1.0);
        let ids: Vec<u32> = (0..5).map(|i| ((i * 7919) % vocab) as u32).collect();
        let positions_in = |edges: &[usize]| {
            row_blocks([12, dim], edges, |r| {
                upload(
                    gpu,
                    &position_table[r.start * dim..r.end * dim],
                    &[r.len(), dim],
                )
            })
        };
        let it = Tensor::upload_u32(gpu, "ids", &ids, &[ids.len()]).unwrap();
        let out = zeros(gpu, &[ids.len(), dim]);
        for encoded in encodings(&table, dim) {
            let layouts: [(RowBlocks, RowBlocks); 2] = [
                (
                    row_blocks([vocab, dim], &[], |r| (encoded.upload)(gpu, r)),
                    positions_in(&[]),
                ),
                (
                    row_blocks([vocab, dim], &[vocab / 3, vocab / 2], |r| {
                        (encoded.upload)(gpu, r)
                    }),
                    positions_in(&[5, 7]),
                ),
            ];
            let values = &encoded.values;
            for (tt, pt) in &layouts {
                let what = format!(
                    "{} embedding {vocab}x{dim} in {} blocks",
                    encoded.name,
                    tt.parts.len()
                );
                let lookup = |first_position: Option<usize>| -> Vec<f32> {
                    let mut expected = Vec::new();
                    for (r, &id) in ids.iter().enumerate() {
                        for c in 0..dim {
                            let position =
                                first_position.map_or(0.0, |p| position_table[(p + r) * dim + c]);
                            expected.push(values[id as usize * dim + c] * 2.5 + position);
                        }
                    }
                    expected
                };
                // int8 rows are scaled once (row scale times the embedding scale), which
                // may round differently from the reference's two products.
                let tolerance = if encoded.name == "int8" { 1e-6 } else { 0.0 };
                run(gpu, |rec| ops::embedding(rec, &it, tt, 2.5, None, &out));
                assert_close(&read(gpu, &out), &lookup(None), tolerance, &what);

                let positions = ops::Positions {
                    table: pt,
                    offset: 2,
                    from_step: false,
                    rows_per_sequence: ids.len(),
                };
                run(gpu, |rec| {
                    ops::embedding(rec, &it, tt, 2.5, Some(positions), &out)
                });
                let with = format!("{what} with positions");
                assert_close(&read(gpu, &out), &lookup(Some(2)), tolerance, &with);

                let positions = ops::Positions {
                    table: pt,
                    offset: 2,
                    from_step: true,
                    rows_per_sequence: ids.len(),
                };
                run_at_step(gpu, 4, |rec| {
                    ops::embedding(rec, &it, tt, 2.5, Some(positions), &out)
                });
                let after = format!("{what} with positions after the step");
                assert_close(&read(gpu, &out), &lookup(Some(6)), tolerance, &after);
            }
        }
    }
}
