//! `embedding`: scaled row lookup, with and without position rows (fixed offset and from the
//! step), from tables in one buffer and in row blocks.

use crate::common::*;
use crate::{row_blocks, upload, zeros};
use seq2seq_gpu::gpu::{RowBlocks, Tensor};
use seq2seq_gpu::ops;

#[test]
fn embedding_lookup_scales_rows_and_adds_positions() {
    let gpu = gpu();
    let mut rng = rng(8);
    for (vocab, dim) in [(1, 1), (17, 63), (129, 65), (300, 257)] {
        let table = random_vec(&mut rng, vocab * dim, 1.0);
        let position_table = random_vec(&mut rng, 12 * dim, 1.0);
        let ids: Vec<u32> = (0..5).map(|i| ((i * 7919) % vocab) as u32).collect();
        let split = |values: &[f32], rows: usize, edges: &[usize]| {
            row_blocks([rows, dim], edges, |r| {
                upload(&gpu, &values[r.start * dim..r.end * dim], &[r.len(), dim])
            })
        };
        let layouts: [(RowBlocks, RowBlocks); 2] = [
            (split(&table, vocab, &[]), split(&position_table, 12, &[])),
            (
                split(&table, vocab, &[vocab / 3, vocab / 2]),
                split(&position_table, 12, &[5, 7]),
            ),
        ];
        let it = Tensor::upload_u32(&gpu, "ids", &ids, &[ids.len()]).unwrap();
        let out = zeros(&gpu, &[ids.len(), dim]);
        let (table, position_table, ids) = (&table, &position_table, &ids);
        for (tt, pt) in &layouts {
            let blocks = tt.parts.len();
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
            run(&gpu, |rec| ops::embedding(rec, &it, tt, 2.5, None, &out));
            assert_close(
                &read(&gpu, &out),
                &lookup(None),
                0.0,
                &format!("embedding {vocab}x{dim} in {blocks} blocks"),
            );

            let positions = ops::Positions {
                table: pt,
                offset: 2,
                from_step: false,
                rows_per_sequence: ids.len(),
            };
            run(&gpu, |rec| {
                ops::embedding(rec, &it, tt, 2.5, Some(positions), &out)
            });
            assert_close(&read(&gpu, &out), &lookup(Some(2)), 0.0, "with positions");

            let positions = ops::Positions {
                table: pt,
                offset: 2,
                from_step: true,
                rows_per_sequence: ids.len(),
            };
            run_at_step(&gpu, 4, |rec| {
                ops::embedding(rec, &it, tt, 2.5, Some(positions), &out)
            });
            assert_close(
                &read(&gpu, &out),
                &lookup(Some(6)),
                0.0,
                "with positions after the step",
            );
        }
    }
}
