// The parameters of the attention kernel and of the merge of its key splits, which each
// piece binds at 0 (a storage buffer where its storage bindings leave room, see ParamsBinding).

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
    // Queries of batch item b read keys, values and mask of item b / kv_group: the beams
    // of one input share its encoder output.
    kv_group: u32,
    // With FLAG_TABLE, position j of item b's keys and values is in the rows of sequence
    // table[b * table_stride + j] (beam search shares cache rows between beams instead of
    // copying them).
    table_stride: u32,
    // Workgroups sharing one query row's keys (1: no split).
    splits: u32,
    // With the query projected in the kernel (attention_projected.wgsl): the input rows'
    // width, which q_offset, q_stride and q_batch_stride then address, and their norm's
    // epsilon.
    model_dim: u32,
    eps: f32,
    // Query heads per key/value head (grouped-query attention; 1 for multi-head).
    head_group: u32,
    // A sliding window (0: none), soft-capped scores (0: none), and the rows per sequence of
    // a ring cache (0: keys are rows as they are).
    window: u32,
    softcap: f32,
    cache_rows: u32,
    // A paged cache (vLLM's paged attention): keys and values are a pool of blocks of
    // block_rows rows, and position j of item b is in block table[b * table_stride + j /
    // block_rows]. 0: not paged.
    block_rows: u32,
}


const MAX_HEAD_DIM: u32 = 256u;
// The most negative useful score (WGSL has no infinity literal; Tint rejects f32::MIN's
// decimal form as out of range).
const NEG_INF: f32 = -3.4e38;

// Where the split record of (row, head, batch item, split) starts: running max, sum, then
// head_dim unnormalised output values.
fn partial_record(row: u32, head: u32, batch: u32, split: u32) -> u32 {
    let query = (batch * params.q_rows + row) * params.heads + head;
    return (query * params.splits + split) * (params.head_dim + 2u);
}
