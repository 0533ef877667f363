//! Continuous batching's kernels: each sequence at a decode position of its own (the step
//! minus the step it began at), and paged caches (a pool of blocks that a table per sequence
//! names): the append writes into the named blocks, and attention from the step reads them,
//! as a CPU reference over each sequence's own positions does.

use crate::common::*;
use crate::upload;
use seq2seq_gpu::gpu::{Gpu, Plan, Recorder, Tensor};
use seq2seq_gpu::ops::kv_cache::Pages;
use seq2seq_gpu::ops::{self, Attention};

const BLOCK_ROWS: usize = 2;
const BLOCKS_PER_SEQUENCE: usize = 3;
const POOL_BLOCKS: usize = 10;

/// Records with `build`, then submits at decode step `step` with sequence s begun at step
/// `origins[s]`.
fn run_with_origins(
    gpu: &Gpu,
    step: u32,
    origins: &[u32],
    build: impl FnOnce(&mut Recorder) -> seq2seq_gpu::Result<()>,
) -> Plan {
    let mut rec = Recorder::new(gpu);
    build(&mut rec).expect("recording");
    let plan = rec.finish().expect("plan");
    plan.set_step(gpu, step);
    for (s, &origin) in origins.iter().enumerate() {
        plan.set_origin(gpu, s, origin).unwrap();
    }
    plan.submit(gpu);
    plan
}

/// Each sequence's blocks, scattered over the pool (block 0 left out, as decoders keep it
/// for idle rows).
fn table() -> Vec<u32> {
    vec![7, 2, 9, 4, 1, 8, 3, 6, 5]
}

/// Pool row of sequence `s`'s position `p`.
fn pool_row(table: &[u32], s: usize, p: usize) -> usize {
    table[s * BLOCKS_PER_SEQUENCE + p / BLOCK_ROWS] as usize * BLOCK_ROWS + p % BLOCK_ROWS
}

fn pages(table: &Tensor) -> Pages<'_> {
    Pages {
        table,
        block_rows: BLOCK_ROWS,
        blocks_per_sequence: BLOCKS_PER_SEQUENCE,
    }
}

#[test]
fn append_writes_each_sequence_at_its_own_position_in_its_blocks() {
    let gpu = gpu();
    let mut rng = rng(31);
    let (sequences, width) = (3, 5);
    let capacity = BLOCKS_PER_SEQUENCE * BLOCK_ROWS;
    let pool_init = random_vec(&mut rng, (POOL_BLOCKS + 1) * BLOCK_ROWS * width, 1.0);
    let src = random_vec(&mut rng, sequences * width, 1.0);
    let pool = upload(&gpu, &pool_init, &[(POOL_BLOCKS + 1) * BLOCK_ROWS, width]);
    let new_rows = upload(&gpu, &src, &[sequences, width]);
    let table_data = table();
    let table = Tensor::upload_u32(&gpu, "table", &table_data, &[sequences, 3]).unwrap();
    // At step 9, sequences begun at steps 9, 6 and 4 are at positions 0, 3 and 5.
    let (step, origins) = (9, [9, 6, 4]);
    run_with_origins(&gpu, step, &origins, |rec| {
        let view = new_rows.matrix();
        ops::kv_cache::append(rec, view, &pool, 1, capacity, Some(pages(&table)))
    });
    let mut expected = pool_init.clone();
    for (s, origin) in origins.iter().enumerate() {
        let row = pool_row(&table_data, s, (step - origin) as usize);
        expected[row * width..][..width].copy_from_slice(&src[s * width..][..width]);
    }
    assert_eq!(read(&gpu, &pool), expected);
}

/// With every attention variant (both forms, both reductions, keys split across
/// workgroups).
#[test]
fn attention_from_the_step_reads_each_sequence_from_its_blocks_up_to_its_position() {
    let mut rng = rng(32);
    let (sequences, heads, dh) = (3, 2, 5);
    let width = heads * dh;
    let capacity = BLOCKS_PER_SEQUENCE * BLOCK_ROWS;
    let pool_rows = (POOL_BLOCKS + 1) * BLOCK_ROWS;
    let q = random_vec(&mut rng, sequences * width, 1.0);
    let kv = random_vec(&mut rng, pool_rows * 2 * width, 1.0);
    let table_data = table();
    let (step, origins) = (14u32, [14u32, 11, 9]);
    let scale = 0.4;
    let run = |gpu: &Gpu, form, splits: usize| {
        let qt = upload(gpu, &q, &[sequences, width]);
        let kvt = upload(gpu, &kv, &[pool_rows, 2 * width]);
        let out = upload(gpu, &vec![0.0; sequences * width], &[sequences, width]);
        let table = Tensor::upload_u32(gpu, "table", &table_data, &[sequences, 3]).unwrap();
        let records = upload(
            gpu,
            &vec![0.0; ops::split_records_len(sequences * heads, dh, splits)],
            &[ops::split_records_len(sequences * heads, dh, splits)],
        );
        run_with_origins(gpu, step, &origins, |rec| {
            ops::attention_with(
                rec,
                Some(form),
                Attention {
                    q: qt.matrix().into(),
                    k: kvt.matrix().columns(0, width),
                    v: kvt.matrix().columns(width, width),
                    out: out.matrix(),
                    batch: sequences,
                    heads,
                    kv_heads: heads,
                    head_dim: dh,
                    scale,
                    causal: true,
                    window: None,
                    softcap: None,
                    position_bias: None,
                    key_mask: None,
                    from_step: true,
                    kv_group: 1,
                    row_table: None,
                    pages: Some(pages(&table)),
                    split: (splits > 1).then_some(ops::KeySplit {
                        splits,
                        records: &records,
                    }),
                },
            )
        });
        read(gpu, &out)
    };
    let mut expected = Vec::new();
    for (s, origin) in origins.iter().enumerate() {
        // The query at position p sees its sequence's keys 0..=p.
        let p = (step - origin) as usize;
        assert!(p < capacity);
        for h in 0..heads {
            let query = &q[s * width + h * dh..][..dh];
            let key = |j: usize| &kv[pool_row(&table_data, s, j) * 2 * width + h * dh..][..dh];
            let value =
                |j: usize| &kv[pool_row(&table_data, s, j) * 2 * width + width + h * dh..][..dh];
            let scores: Vec<f32> = (0..=p)
                .map(|j| scale * query.iter().zip(key(j)).map(|(a, b)| a * b).sum::<f32>())
                .collect();
            let weights = reference::softmax(&scores, scores.len());
            expected
                .extend((0..dh).map(|d| (0..=p).map(|j| weights[j] * value(j)[d]).sum::<f32>()));
        }
    }
    for (gpu, form, splits) in crate::attention::variants() {
        let label = format!("paged attention, {form:?}, {splits} splits");
        assert_close(&run(&gpu, form, splits), &expected, 1e-5, &label);
    }
}

#[test]
fn paged_caches_are_refused_where_they_cannot_be_read() {
    let gpu = gpu();
    let pool = upload(&gpu, &[0.0; 10 * 4], &[10, 4]);
    let rows = upload(&gpu, &[0.0; 2 * 4], &[2, 4]);
    let table = Tensor::upload_u32(&gpu, "table", &[1; 5], &[5]).unwrap();
    let mut rec = Recorder::new(&gpu);
    // Five entries are not two sequences' worth of three blocks.
    let message = ops::kv_cache::append(&mut rec, rows.matrix(), &pool, 1, 6, Some(pages(&table)))
        .unwrap_err()
        .to_string();
    assert!(message.contains("paged cache"), "{message}");
    // The fused QKV projection has no binding left for a block table.
    let table = Tensor::upload_u32(&gpu, "table", &[1; 6], &[6]).unwrap();
    let append = ops::CacheAppend {
        cache: &pool,
        split: 0,
        rows_per_sequence: 1,
        capacity: 6,
        pages: Some(pages(&table)),
    };
    let fusion = ops::Fusion {
        append: Some(append),
        ..ops::Fusion::default()
    };
    let weight = upload(&gpu, &[0.0; 16], &[4, 4]);
    let out = upload(&gpu, &[0.0; 8], &[2, 4]);
    let fused = ops::linear_fused(
        &mut rec,
        rows.matrix(),
        &weight,
        None,
        out.matrix(),
        ops::Epilogue::default(),
        fusion,
    );
    assert!(fused.is_err(), "a paged append in the fused kernel");
}
