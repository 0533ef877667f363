//! `gather_rows`: rows picked from f32, f16 and int8 matrices, in one buffer or in row
//! blocks, keep their values and scales.

use crate::common::reference as cpu;
use crate::common::*;
use crate::{row_blocks, upload, zeros};
use seq2seq_gpu::gpu::{RowBlocks, Tensor};
use seq2seq_gpu::ops::{self, Epilogue};

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
    let f16_values: Vec<f32> = w.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect();
    let int8_values: Vec<f32> = q
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f32 * scales[i / k])
        .collect();
    let mut tables: Vec<(RowBlocks, Vec<f32>)> = Vec::new();
    for edges in [&[][..], &[5, 8, 33][..]] {
        let rows = |r: &std::ops::Range<usize>| r.start * k..r.end * k;
        tables.push((
            row_blocks([n, k], edges, |r| upload(&gpu, &w[rows(&r)], &[r.len(), k])),
            w.clone(),
        ));
        tables.push((
            row_blocks([n, k], edges, |r| {
                Tensor::upload_f16(&gpu, "w", &w[rows(&r)], &[r.len(), k]).unwrap()
            }),
            f16_values.clone(),
        ));
        tables.push((
            row_blocks([n, k], edges, |r| {
                Tensor::upload_int8(&gpu, "w", &q[rows(&r)], &scales[r.clone()], &[r.len(), k])
                    .unwrap()
            }),
            int8_values.clone(),
        ));
    }
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
            &format!(
                "gathered {:?} in {} blocks",
                table.encoding(),
                table.parts.len()
            ),
        );
    }
}
