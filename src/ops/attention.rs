//! Fused multi-head attention (see shaders/attention.wgsl).

use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, Uniform, uniform};
use crate::gpu::{Recorder, Tensor, View};

static ATTENTION_MODULE: Module = Module {
    name: "attention",
    sources: &[include_str!("../../shaders/attention.wgsl")],
    needs_shader_f16: false,
};

const ATTENTION: Kernel = Kernel {
    module: &ATTENTION_MODULE,
    entry: "attention_main",
    params: &AttentionParams::LAYOUT,
    // q, k, v, out, bias buckets, bias table, key mask, row table
    storage: &[Read, Read, Read, ReadWrite, Read, Read, Read, Read],
};
pub(crate) const KERNELS: &[Kernel] = &[ATTENTION];

const MAX_HEAD_DIM: usize = 256;

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
    /// [batch * q_rows, heads * head_dim]
    pub q: View<'a>,
    /// [batch * kv_rows, heads * head_dim]; with `from_step`, kv_rows is the cache capacity.
    pub k: View<'a>,
    pub v: View<'a>,
    /// [batch * q_rows, heads * head_dim]
    pub out: View<'a>,
    pub batch: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub scale: f32,
    pub causal: bool,
    pub position_bias: Option<PositionBias<'a>>,
    /// u32 [batch, kv_rows]: 0 hides a key (padding).
    pub key_mask: Option<&'a Tensor>,
    /// Queries are the newest tokens after the `step.pos` cached ones; keys run to the end
    /// of them.
    pub from_step: bool,
    /// Batch items per key/value item: `k`, `v` and `key_mask` hold batch / kv_group items
    /// (the beams of one input share its encoder output). 1 when each item has its own.
    pub kv_group: usize,
    /// u32 [batch, kv_rows]: row j of item b's keys and values is row table[b][j] of `k` and
    /// `v` (counted from the start of the view), so beams share cache rows without copies.
    pub row_table: Option<&'a Tensor>,
}

uniform! {
    struct AttentionParams {
        q_rows: u32,
        kv_len: u32,
        heads: u32,
        head_dim: u32,
        q_offset: u32,
        q_stride: u32,
        q_batch_stride: u32,
        k_offset: u32,
        k_stride: u32,
        k_batch_stride: u32,
        v_offset: u32,
        v_stride: u32,
        v_batch_stride: u32,
        out_stride: u32,
        out_batch_stride: u32,
        flags: u32,
        scale: f32,
        bias_center: u32,
        mask_stride: u32,
        kv_group: u32,
        table_stride: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

pub fn attention(rec: &mut Recorder, a: Attention) -> Result<()> {
    let width = a.heads * a.head_dim;
    if a.batch == 0 || a.heads == 0 || a.head_dim == 0 || a.head_dim > MAX_HEAD_DIM {
        return Err(Error::shape(
            "attention",
            format!("a batch, heads, and a head dimension of 1 to {MAX_HEAD_DIM}"),
            format!(
                "batch {}, {} heads of dimension {}",
                a.batch, a.heads, a.head_dim
            ),
        ));
    }
    for (name, view) in [("q", a.q), ("k", a.k), ("v", a.v), ("out", a.out)] {
        let items = if name == "k" || name == "v" {
            a.batch / a.kv_group.max(1)
        } else {
            a.batch
        };
        if view.cols != width || items == 0 || !view.rows.is_multiple_of(items) {
            return Err(Error::shape(
                "attention",
                format!("{name} of {items} items x rows by {width}"),
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
    let q_rows = a.q.rows / a.batch;
    let kv_rows = a.k.rows / kv_batch;
    if a.v.rows != a.k.rows || a.out.rows != a.q.rows {
        return Err(Error::shape(
            "attention",
            format!(
                "v with the {} rows of k, out with the {} of q",
                a.k.rows, a.q.rows
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
    if let Some(table) = a.row_table
        && (table.len() != a.batch * kv_rows || a.kv_group != 1)
    {
        return Err(Error::shape(
            "attention",
            format!(
                "a row table of batch {} x {kv_rows} keys, without key/value groups",
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
    let flags = u32::from(a.causal)
        | (u32::from(a.position_bias.is_some()) << 1)
        | (u32::from(a.key_mask.is_some()) << 2)
        | (u32::from(a.from_step) << 3)
        | (u32::from(a.row_table.is_some()) << 4);
    let params = AttentionParams {
        q_rows: q_rows as u32,
        kv_len: kv_rows as u32,
        heads: a.heads as u32,
        head_dim: a.head_dim as u32,
        q_offset: a.q.offset as u32,
        q_stride: a.q.stride as u32,
        q_batch_stride: (q_rows * a.q.stride) as u32,
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
        table_stride: kv_rows as u32,
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    let placeholder = rec.gpu().placeholder.clone();
    let buckets = a.position_bias.map_or(&placeholder, |b| &b.buckets.buffer);
    let bias_table = a.position_bias.map_or(&placeholder, |b| &b.table.buffer);
    let mask = a.key_mask.map_or(&placeholder, |m| &m.buffer);
    let table = a.row_table.map_or(&placeholder, |t| &t.buffer);
    if a.out.offset != 0 {
        return Err(Error::shape(
            "attention",
            "an output starting at element 0",
            format!("offset {}", a.out.offset),
        ));
    }
    rec.dispatch(
        &ATTENTION,
        &params,
        &[
            &a.q.tensor.buffer,
            &a.k.tensor.buffer,
            &a.v.tensor.buffer,
            &a.out.tensor.buffer,
            buckets,
            bias_table,
            mask,
            table,
        ],
        [q_rows as u32, a.heads as u32, a.batch as u32],
    )
}
