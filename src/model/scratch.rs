//! The work tensors of one stack's recorded graph, taken from the device's pool.

use super::spec::{ModelSpec, StackSpec};
use crate::error::Result;
use crate::gpu::{Tensor, Workspace};
use crate::ops;

/// Work tensors for the rows one stack processes at once.
pub struct Scratch {
    /// The residual stream [rows, width].
    pub hidden: Tensor,
    /// A second stream buffer of hidden's shape, where a post-norm model folds each
    /// sublayer's norm into the kernels that read its result (the fused decode kernel): a
    /// sublayer then writes its sum to the other buffer while its kernels read the stream.
    pub spare: Option<Tensor>,
    /// Normalised input of a pre-norm sublayer [rows, width], or a sublayer's output before
    /// its own norm (Gemma).
    pub normed: Tensor,
    /// Fused Q, K, V [rows, inner + 2 * kv_dim].
    pub qkv: Tensor,
    /// Attention output [rows, inner].
    pub attended: Tensor,
    /// Cross-attention queries [rows, inner] (decoder).
    pub query: Tensor,
    /// Feed-forward input projection [rows, ffn (x2 when gated)].
    pub ffn: Tensor,
    /// Gated product [rows, ffn] (gated models).
    pub ffn_gated: Tensor,
    /// Workgroups sharing one query row's keys in attention, and their records.
    pub key_splits: usize,
    pub split_records: Tensor,
}

impl Scratch {
    /// Work tensors around `hidden` ([rows, width]), which the caller may keep beyond them,
    /// for attention over at most `key_rows` keys.
    pub fn new(
        ws: &mut Workspace,
        spec: &ModelSpec,
        stack: &StackSpec,
        hidden: Tensor,
        key_rows: usize,
    ) -> Result<Scratch> {
        let (d, inner, ff) = (stack.width, stack.inner_dim(), stack.ffn_dim);
        let rows = hidden.shape[0];
        let ffn_width = if spec.gated_ffn { 2 * ff } else { ff };
        let queries = rows * stack.heads;
        let key_splits = ops::key_splits(ws.gpu(), queries, key_rows);
        let records = match key_splits {
            1 => 1,
            splits => ops::split_records_len(queries, stack.head_dim, splits),
        };
        // Fused kernels fold norms into their reads of at most 8 rows (see `ops::fusable`).
        let spare = match !spec.pre_norm && ws.gpu().fused_kernels() && rows <= 8 {
            true => Some(ws.tensor(&[rows, d])?),
            false => None,
        };
        Ok(Scratch {
            spare,
            key_splits,
            split_records: ws.tensor(&[records])?,
            hidden,
            normed: ws.tensor(&[rows, d])?,
            qkv: ws.tensor(&[rows, inner + 2 * stack.kv_dim()])?,
            attended: ws.tensor(&[rows, inner])?,
            query: ws.tensor(&[rows, inner])?,
            ffn: ws.tensor(&[rows, ffn_width])?,
            ffn_gated: ws.tensor(&[rows, if spec.gated_ffn { ff } else { 1 }])?,
        })
    }
}
