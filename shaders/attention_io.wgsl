// The operands of attention.wgsl as given: Q, keys and values (column slices of wider
// buffers), T5's relative position bias and the beam search's row table.

@group(0) @binding(0) var<storage, read> params: AttentionParams;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> kv: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> bias_buckets: array<u32>;
@group(0) @binding(6) var<storage, read> bias_table: array<f32>;
@group(0) @binding(7) var<storage, read> key_mask: array<u32>;
@group(0) @binding(8) var<storage, read> table: array<u32>;

fn load_query(row: u32, head: u32, batch: u32, ids: Lane) {
    let dh = params.head_dim;
    let base = params.q_offset + batch * params.q_batch_stride + row * params.q_stride + head * dh;
    for (var d = ids.index; d < dh; d += LANES) { q_row[d] = q[base + d]; }
}

fn load_kv(i: u32) -> f32 {
    return kv[i];
}

fn position_bias(key: u32, q_pos: u32, head: u32) -> f32 {
    let bucket = bias_buckets[i32(params.bias_center) + i32(key) - i32(q_pos)];
    return bias_table[bucket * params.heads + head];
}

fn table_entry(i: u32) -> u32 {
    return table[i];
}
