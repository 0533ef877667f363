//! Fused multi-head attention (see shaders/attention.wgsl), with its keys split across
//! workgroups where one query row's keys are many and the grid is small (decoding on a GPU).

use super::attention_modules::{
    ATTENTION_MODULES, AttentionParams, COMBINE, PROJECTED_MODULES, attention_kernel,
    projected_kernel,
};
pub use super::attention_query::{Query, QueryProjection};
use super::kv_cache::Pages;
use super::weight_reader::WeightReader;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, MAX_KEY_SPLITS, Recorder, Tensor, View};

/// How the lanes of a workgroup share the dot products of a tile of keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionForm {
    /// 16 lanes per key along the head dimension, so neighbouring lanes read neighbouring
    /// elements (coalesced loads): for GPUs.
    AlongHeadDim,
    /// One lane per key, reading its row alone: for CPU adapters, whose lanes share no
    /// memory transactions and which pay for the partial sums passing through workgroup
    /// memory (the other form measured 4-12% slower at 128-512 keys on lavapipe,
    /// `bench --attention`).
    KeyPerLane,
}

impl AttentionForm {
    pub const ALL: [AttentionForm; 2] = [AttentionForm::AlongHeadDim, AttentionForm::KeyPerLane];

    /// The form for `gpu`'s adapter.
    pub fn for_adapter(gpu: &Gpu) -> AttentionForm {
        match gpu.is_software() {
            true => AttentionForm::KeyPerLane,
            false => AttentionForm::AlongHeadDim,
        }
    }
}

const MAX_HEAD_DIM: usize = 256;

/// Keys one split covers at least: below this a split's fixed cost outweighs its keys.
const MIN_KEYS_PER_SPLIT: usize = 256;
/// Workgroups an attention dispatch should have to fill a large GPU (a few per compute unit).
const TARGET_WORKGROUPS: usize = 512;

/// How many workgroups share one query row's keys on this adapter, for `queries` (query
/// rows x heads) over up to `key_rows` keys ([`GpuOptions::key_splits`] overrides). Only
/// GPUs split: a CPU adapter has a few cores, which the query rows and heads already fill.
///
/// [`GpuOptions::key_splits`]: crate::gpu::GpuOptions::key_splits
pub fn key_splits(gpu: &Gpu, queries: usize, key_rows: usize) -> usize {
    match gpu.key_splits() {
        Some(splits) => splits,
        None if gpu.is_software() => 1,
        None => gpu_key_splits(queries, key_rows),
    }
}

/// Splits that bring the grid to about `TARGET_WORKGROUPS`, each over at least
/// `MIN_KEYS_PER_SPLIT` keys.
fn gpu_key_splits(queries: usize, key_rows: usize) -> usize {
    let by_keys = key_rows / MIN_KEYS_PER_SPLIT;
    let by_grid = TARGET_WORKGROUPS.div_ceil(queries.max(1));
    by_keys.min(by_grid).clamp(1, MAX_KEY_SPLITS)
}

/// f32 values of the split records for `queries` (query rows x heads) in `splits` shares.
pub fn split_records_len(queries: usize, head_dim: usize, splits: usize) -> usize {
    queries * splits * (head_dim + 2)
}

/// Each query row's keys in `splits` contiguous shares, one workgroup each, whose records
/// (running max, sum, unnormalised output) go to `records` and are merged by a second
/// dispatch.
#[derive(Clone, Copy, Debug)]
pub struct KeySplit<'a> {
    pub splits: usize,
    /// At least [`split_records_len`] f32 values.
    pub records: &'a Tensor,
}

/// T5's relative position bias: `buckets[center + key_pos - query_pos]` is the bucket of a
/// relative distance, `table` ([num_buckets, heads]) the learned bias of each bucket.
#[derive(Clone, Copy, Debug)]
pub struct PositionBias<'a> {
    pub buckets: &'a Tensor,
    pub table: &'a Tensor,
    pub center: usize,
}

#[derive(Clone, Copy, Debug)]
pub struct Attention<'a> {
    pub q: Query<'a>,
    /// [batch * kv_rows, kv_heads * head_dim]; with `from_step`, kv_rows is the cache's rows
    /// per sequence, a ring (position p at row p % kv_rows) where a window keeps only the
    /// last positions. Keys and values are column slices of one buffer (as a fused
    /// projection writes them), which the kernel binds once.
    pub k: View<'a>,
    pub v: View<'a>,
    /// [batch * q_rows, heads * head_dim]
    pub out: View<'a>,
    pub batch: usize,
    pub heads: usize,
    /// Heads of `k` and `v` (grouped-query attention: each serves heads / kv_heads
    /// consecutive query heads); `heads` for multi-head attention.
    pub kv_heads: usize,
    pub head_dim: usize,
    pub scale: f32,
    pub causal: bool,
    /// A sliding window of this many positions: a causal query sees its `window` latest keys
    /// (itself included), a bidirectional one the keys at most `window` positions away, as
    /// transformers masks T5Gemma's sliding layers.
    pub window: Option<usize>,
    /// Scores become cap * tanh(score / cap) before masking.
    pub softcap: Option<f32>,
    pub position_bias: Option<PositionBias<'a>>,
    /// u32 [batch, kv_rows]: 0 hides a key (padding).
    pub key_mask: Option<&'a Tensor>,
    /// Queries are the newest tokens after the `step.pos` cached ones; keys run to the end
    /// of them.
    pub from_step: bool,
    /// Batch items per key/value item: `k`, `v` and `key_mask` hold batch / kv_group items
    /// (the beams of one input share its encoder output). 1 when each item has its own.
    pub kv_group: usize,
    /// u32 [batch, positions] (at least kv_rows positions each): position j of item b's keys
    /// and values is in the rows of sequence table[b][j] of `k` and `v`, so beams share cache
    /// rows without copies.
    pub row_table: Option<&'a Tensor>,
    /// Keys and values (from the decode step) are a pool of blocks that a table per item
    /// names (continuous batching); `k` and `v` are then column slices of the whole pool.
    pub pages: Option<Pages<'a>>,
    /// Split each query row's keys across workgroups (see [`key_splits`]); `None` for one
    /// workgroup per query row.
    pub split: Option<KeySplit<'a>>,
}

pub fn attention(rec: &mut Recorder, a: Attention) -> Result<()> {
    attention_with(rec, None, a)
}

/// [`attention`] in `form` instead of the adapter's (tests and the benchmark run each).
pub fn attention_with(rec: &mut Recorder, form: Option<AttentionForm>, a: Attention) -> Result<()> {
    let width = a.heads * a.head_dim;
    let kv_width = a.kv_heads * a.head_dim;
    if a.batch == 0
        || a.heads == 0
        || a.head_dim == 0
        || a.head_dim > MAX_HEAD_DIM
        || a.kv_heads == 0
        || !a.heads.is_multiple_of(a.kv_heads)
        || a.window == Some(0)
        || a.softcap.is_some_and(|cap| cap.is_nan() || cap <= 0.0)
    {
        return Err(Error::shape(
            "attention",
            format!(
                "a batch, heads (a multiple of the key/value heads), a head dimension of 1 to {MAX_HEAD_DIM}, a positive window and soft cap"
            ),
            format!(
                "batch {}, {} heads of dimension {} over {} key/value heads, window {:?}, cap {:?}",
                a.batch, a.heads, a.head_dim, a.kv_heads, a.window, a.softcap
            ),
        ));
    }
    let mut operands = vec![("k", a.k), ("v", a.v), ("out", a.out)];
    let query_rows = match a.q {
        Query::Given(q) => {
            operands.push(("q", q));
            q.rows
        }
        Query::Projected(p) => {
            p.check(width, a.batch)?;
            if a.position_bias.is_some() || a.row_table.is_some() {
                return Err(Error::invalid(
                    "attention with a projected query takes no position bias or row table",
                ));
            }
            p.x.rows
        }
    };
    if a.k.tensor.buffer != a.v.tensor.buffer {
        return Err(Error::invalid(
            "attention takes keys and values as column slices of one buffer",
        ));
    }
    // A decoder's cache (a ring where a window slides) holds no padding to mask.
    if a.from_step && a.key_mask.is_some() {
        return Err(Error::invalid(
            "attention from the decode step takes no key mask",
        ));
    }
    if a.pages.is_some() && (!a.from_step || a.row_table.is_some() || a.kv_group != 1) {
        return Err(Error::invalid(
            "a paged cache is read from the decode step, without a row table or key/value groups",
        ));
    }
    for (name, view) in operands {
        let keys = name == "k" || name == "v";
        let items = if keys {
            a.batch / a.kv_group.max(1)
        } else {
            a.batch
        };
        let cols = if keys { kv_width } else { width };
        // A paged pool has as many rows as its blocks, whatever the batch.
        let whole = view.rows.is_multiple_of(items) || (keys && a.pages.is_some());
        if view.cols != cols || items == 0 || !whole {
            return Err(Error::shape(
                "attention",
                format!("{name} of {items} items x rows by {cols}"),
                format!("{name} of {}x{}", view.rows, view.cols),
            ));
        }
        view.check("attention")?;
    }
    if a.kv_group == 0 || !a.batch.is_multiple_of(a.kv_group) {
        return Err(Error::shape(
            "attention",
            format!(
                "a batch that is a multiple of the key/value group {}",
                a.kv_group
            ),
            format!("batch {}", a.batch),
        ));
    }
    let kv_batch = a.batch / a.kv_group;
    let q_rows = query_rows / a.batch;
    let kv_rows = match a.pages {
        Some(pages) => pages.check(a.batch, a.k.rows)?,
        None => a.k.rows / kv_batch,
    };
    if a.v.rows != a.k.rows || a.out.rows != query_rows {
        return Err(Error::shape(
            "attention",
            format!(
                "v with the {} rows of k, out with the {query_rows} of q",
                a.k.rows
            ),
            format!("v of {} rows, out of {}", a.v.rows, a.out.rows),
        ));
    }
    if let Some(mask) = a.key_mask
        && mask.len() != kv_batch * kv_rows
    {
        return Err(Error::shape(
            "attention",
            format!("a key mask of {kv_batch} x {kv_rows} keys"),
            format!("key mask {:?}", mask.shape),
        ));
    }
    // A row table covers every position (a ring cache holds fewer rows than positions).
    let table_stride = match a.pages {
        Some(pages) => pages.blocks_per_sequence,
        None => a.row_table.map_or(kv_rows, |t| t.len() / a.batch),
    };
    if let Some(table) = a.row_table
        && (!table.len().is_multiple_of(a.batch) || table_stride < kv_rows || a.kv_group != 1)
    {
        return Err(Error::shape(
            "attention",
            format!(
                "a row table of batch {} x at least {kv_rows} positions, without key/value groups",
                a.batch
            ),
            format!("row table {:?} with group {}", table.shape, a.kv_group),
        ));
    }
    if let Some(bias) = a.position_bias
        && (bias.table.shape.len() != 2 || bias.table.shape[1] != a.heads)
    {
        return Err(Error::shape(
            "attention",
            format!("a position bias table [buckets, {}]", a.heads),
            format!("{:?}", bias.table.shape),
        ));
    }
    let splits = a.split.map_or(1, |s| s.splits);
    if let Some(split) = a.split {
        let needed = split_records_len(query_rows * a.heads, a.head_dim, splits);
        if !(2..=MAX_KEY_SPLITS).contains(&splits) || split.records.len() < needed {
            return Err(Error::shape(
                "attention",
                format!("2 to {MAX_KEY_SPLITS} key splits with {needed} values of records"),
                format!(
                    "{splits} splits with {} values of records",
                    split.records.len()
                ),
            ));
        }
    }
    let (q_view, projection) = match a.q {
        Query::Given(q) => (q, None),
        Query::Projected(p) => (p.x, Some(p)),
    };
    let flags = u32::from(a.causal)
        | (u32::from(a.position_bias.is_some()) << 1)
        | (u32::from(a.key_mask.is_some()) << 2)
        | (u32::from(a.from_step) << 3)
        | (u32::from(a.row_table.is_some() || a.pages.is_some()) << 4)
        | projection.map_or(0, |p| p.flags());
    let params = AttentionParams {
        q_rows: q_rows as u32,
        kv_len: kv_rows as u32,
        heads: a.heads as u32,
        head_dim: a.head_dim as u32,
        q_offset: q_view.offset as u32,
        q_stride: q_view.stride as u32,
        q_batch_stride: (q_rows * q_view.stride) as u32,
        k_offset: a.k.offset as u32,
        k_stride: a.k.stride as u32,
        k_batch_stride: (kv_rows * a.k.stride) as u32,
        v_offset: a.v.offset as u32,
        v_stride: a.v.stride as u32,
        v_batch_stride: (kv_rows * a.v.stride) as u32,
        out_stride: a.out.stride as u32,
        out_batch_stride: (q_rows * a.out.stride) as u32,
        flags,
        scale: a.scale,
        bias_center: a.position_bias.map_or(0, |b| b.center as u32),
        mask_stride: kv_rows as u32,
        kv_group: a.kv_group as u32,
        table_stride: table_stride as u32,
        splits: splits as u32,
        model_dim: q_view.cols as u32,
        eps: projection.and_then(|p| p.norm).map_or(0.0, |n| n.eps),
        head_group: (a.heads / a.kv_heads) as u32,
        window: a.window.unwrap_or(0) as u32,
        softcap: a.softcap.unwrap_or(0.0),
        // The decoder's cache holds kv_rows positions per sequence, as a ring where a
        // sliding window keeps only the last ones.
        cache_rows: if a.from_step && a.pages.is_none() {
            kv_rows as u32
        } else {
            0
        },
        block_rows: a.pages.map_or(0, |p| p.block_rows as u32),
    };
    let placeholder = rec.gpu().placeholder.clone();
    let buckets = a.position_bias.map_or(&placeholder, |b| &b.buckets.buffer);
    let bias_table = a.position_bias.map_or(&placeholder, |b| &b.table.buffer);
    let mask = a.key_mask.map_or(&placeholder, |m| &m.buffer);
    let table = match (a.pages, a.row_table) {
        (Some(pages), _) => &pages.table.buffer,
        (None, table) => table.map_or(&placeholder, |t| &t.buffer),
    };
    if a.out.offset != 0 {
        return Err(Error::shape(
            "attention",
            "an output starting at element 0",
            format!("offset {}", a.out.offset),
        ));
    }
    let gpu = rec.gpu();
    let form = form.unwrap_or_else(|| AttentionForm::for_adapter(gpu)) as usize;
    let subgroups = usize::from(gpu.subgroups());
    let target = a.split.map_or(&a.out.tensor.buffer, |s| &s.records.buffer);
    let grid = [(q_rows * splits) as u32, a.heads as u32, a.batch as u32];
    match projection {
        None => rec.dispatch(
            &attention_kernel(&ATTENTION_MODULES[form][subgroups]),
            &params,
            &[
                &q_view.tensor.buffer,
                &a.k.tensor.buffer,
                target,
                buckets,
                bias_table,
                mask,
                table,
            ],
            grid,
        )?,
        Some(p) => {
            let (reader, scales) = WeightReader::choose(&p.weight.encoding, gpu.native_f16());
            let module = &PROJECTED_MODULES[reader.index()][form][subgroups];
            rec.dispatch(
                &projected_kernel(module),
                &params,
                &[
                    &q_view.tensor.buffer,
                    &p.weight.buffer,
                    p.bias.map_or(&placeholder, |b| &b.buffer),
                    target,
                    scales.unwrap_or(&placeholder),
                    p.norm.map_or(&placeholder, |n| &n.values.buffer),
                    &a.k.tensor.buffer,
                    mask,
                ],
                grid,
            )?
        }
    }
    match a.split {
        Some(split) => rec.dispatch(
            &COMBINE,
            &params,
            &[&split.records.buffer, &a.out.tensor.buffer],
            [q_rows as u32, a.heads as u32, a.batch as u32],
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::gpu_key_splits;

    #[test]
    fn gpus_split_long_keys_of_small_grids_only() {
        // One decode row of 8 heads: short ranges stay whole, long ones split until the
        // grid nears 512 workgroups.
        assert_eq!(gpu_key_splits(8, 192), 1);
        assert_eq!(gpu_key_splits(8, 511), 1);
        assert_eq!(gpu_key_splits(8, 512), 2);
        assert_eq!(gpu_key_splits(8, 4096), 16);
        assert_eq!(gpu_key_splits(8, 1 << 20), 64);
        assert_eq!(gpu_key_splits(96, 1 << 20), 6);
        // An encoder's many query rows already fill the GPU.
        assert_eq!(gpu_key_splits(512 * 8, 4096), 1);
    }
}
