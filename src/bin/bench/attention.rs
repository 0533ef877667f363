//! `--attention`: one decode attention call (one query row of 8 heads of 64 against a
//! growing key range) with each reduction and key split the kernel has, in one run: the
//! workgroup-memory and subgroup reductions, one workgroup per head, the adapter's split
//! and forced ones. Reports microseconds per call and the key/value bytes read per second.

use std::sync::Arc;

use seq2seq_gpu::Result;
use seq2seq_gpu::gpu::{Gpu, GpuOptions, Recorder, Tensor};
use seq2seq_gpu::ops::{self, Attention, AttentionForm, KeySplit};
use serde_json::{Value, json};

use super::plan_gflops;

const HEADS: usize = 8;
const HEAD_DIM: usize = 64;

/// GB/s of keys and values read by one attention call in `form` over `keys` keys in
/// `splits` shares.
fn attention_rate(gpu: &Gpu, form: AttentionForm, keys: usize, splits: usize) -> Result<f64> {
    let width = HEADS * HEAD_DIM;
    let values =
        |len: usize| -> Vec<f32> { (0..len).map(|i| ((i % 23) as f32 - 11.0) * 0.02).collect() };
    let q = Tensor::upload_f32(gpu, "q", &values(width), &[1, width])?;
    let kv = Tensor::upload_f32(gpu, "kv", &values(keys * width), &[keys, width])?;
    let out = Tensor::upload_f32(gpu, "out", &vec![0.0; width], &[1, width])?;
    let records_len = ops::split_records_len(HEADS, HEAD_DIM, splits);
    let records = Tensor::upload_f32(gpu, "records", &vec![0.0; records_len], &[records_len])?;
    let mut rec = Recorder::new(gpu);
    ops::attention_with(
        &mut rec,
        Some(form),
        Attention {
            q: q.matrix().into(),
            k: kv.matrix(),
            v: kv.matrix(),
            out: out.matrix(),
            batch: 1,
            heads: HEADS,
            kv_heads: HEADS,
            head_dim: HEAD_DIM,
            scale: 0.125,
            causal: false,
            window: None,
            softcap: None,
            position_bias: None,
            key_mask: None,
            from_step: false,
            kv_group: 1,
            row_table: None,
            pages: None,
            split: (splits > 1).then_some(KeySplit {
                splits,
                records: &records,
            }),
        },
    )?;
    let plan = rec.finish()?;
    plan_gflops(gpu, &plan, &out, (2 * keys * width * 4) as f64)
}

pub fn run(quick: bool) -> Result<Vec<Value>> {
    let with = |subgroups| {
        pollster::block_on(Gpu::with_options(GpuOptions {
            subgroups,
            ..GpuOptions::default()
        }))
    };
    let shared: Arc<Gpu> = with(false)?;
    let adapter: Arc<Gpu> = with(true)?;
    println!(
        "adapter: {}; decode attention, {HEADS} heads of {HEAD_DIM}, one query row: us per call (K+V GB/s)",
        adapter.adapter_description()
    );
    let lengths: &[usize] = if quick {
        &[16, 128, 512, 2048]
    } else {
        &[128, 512, 2048, 8192, 32768]
    };
    let form = AttentionForm::for_adapter(&adapter);
    let mut lines = Vec::new();
    for &keys in lengths {
        let chosen = ops::key_splits(&adapter, HEADS, keys);
        // (device, form, splits): both forms with workgroup-memory reductions, then the
        // adapter's form with its reductions, whole and split.
        let mut variants = vec![
            (&shared, AttentionForm::KeyPerLane, 1),
            (&shared, AttentionForm::AlongHeadDim, 1),
        ];
        if adapter.subgroups() {
            variants.push((&adapter, form, 1));
        }
        for splits in [chosen, 4, 16] {
            if splits > 1 && !variants.iter().any(|v| v.2 == splits) {
                variants.push((&adapter, form, splits));
            }
        }
        let mut line = format!("{keys:>6} keys:");
        for (gpu, form, splits) in variants {
            let rate = attention_rate(gpu, form, keys, splits)?;
            let micros = (2 * keys * HEADS * HEAD_DIM * 4) as f64 / rate / 1e3;
            let reductions = if gpu.subgroups() {
                "subgroups"
            } else {
                "shared"
            };
            line.push_str(&format!(
                "  {form:?}/{reductions}/x{splits} {micros:.1} ({rate:.2})"
            ));
            lines.push(json!({ "keys": keys, "form": format!("{form:?}"), "subgroups": gpu.subgroups(),
                "splits": splits, "adapter_choice": splits == chosen && gpu.subgroups() == adapter.subgroups(),
                "us_per_call": micros, "kv_gb_per_s": rate }));
        }
        println!("{line}");
    }
    Ok(lines)
}
