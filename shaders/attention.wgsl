// Fused scaled dot-product attention for one (query row, head, batch item) per workgroup:
//   out = softmax(scale * q·kᵀ + bias + masks) · v
// computed in one pass over the keys with an online softmax (running max and sum), so the
// score matrix never reaches memory and any number of keys fits.
//
// Q, K, V and the output are addressed by element offset and row/batch strides, so they can
// be column slices of a fused QKV projection, of the cross-attention K/V of every layer, or
// of the preallocated self-attention cache.
//
// Options (flags): causal mask; T5's relative position bias, looked up per relative distance
// in a bucket table computed on the CPU exactly as transformers does; a key-padding mask;
// and positions taken from the decode step (the cache holds step.pos earlier tokens).

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
    // With FLAG_TABLE, row j of item b's keys is row table[b * table_stride + j] of k and v
    // (beam search shares cache rows between beams instead of copying them).
    table_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read> bias_buckets: array<u32>;
@group(0) @binding(7) var<storage, read> bias_table: array<f32>;
@group(0) @binding(8) var<storage, read> key_mask: array<u32>;
@group(0) @binding(9) var<storage, read> table: array<u32>;

const FLAG_CAUSAL: u32 = 1u;
const FLAG_BIAS: u32 = 2u;
const FLAG_KEY_MASK: u32 = 4u;
const FLAG_STEP: u32 = 8u;
const FLAG_TABLE: u32 = 16u;

const WG: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;
const DIMS_PER_LANE: u32 = 4u; // MAX_HEAD_DIM / WG
// The most negative useful score (WGSL has no infinity literal; Tint rejects f32::MIN's
// decimal form as out of range).
const NEG_INF: f32 = -3.4e38;

var<workgroup> q_row: array<f32, 256>;
var<workgroup> probs: array<f32, 64>;
var<workgroup> scratch: array<f32, 64>;

fn chunk_reduce(value: f32, lane: u32, is_max: bool) -> f32 {
    // Every invocation must have read the previous result before it is overwritten.
    workgroupBarrier();
    scratch[lane] = value;
    workgroupBarrier();
    for (var width = WG / 2u; width > 0u; width >>= 1u) {
        if lane < width {
            if is_max {
                scratch[lane] = max(scratch[lane], scratch[lane + width]);
            } else {
                scratch[lane] += scratch[lane + width];
            }
        }
        workgroupBarrier();
    }
    return workgroupUniformLoad(&scratch[0]);
}

// Element offset of key row `key` of batch item `b` (before the column offset).
fn key_row(b: u32, key: u32, use_table: bool, stride: u32, batch_stride: u32) -> u32 {
    if use_table { return table[b * params.table_stride + key] * stride; }
    return b * batch_stride + key * stride;
}

@compute @workgroup_size(64)
fn attention_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x;
    let head = wg.y;
    let batch = wg.z;
    let lane = lid.x;
    let dh = params.head_dim;

    var first_pos = 0u;
    var kv_len = params.kv_len;
    if (params.flags & FLAG_STEP) != 0u {
        first_pos = step.pos;
        kv_len = step.pos + params.q_rows;
    }
    let q_pos = first_pos + row;
    var n_keys = kv_len;
    if (params.flags & FLAG_CAUSAL) != 0u { n_keys = min(kv_len, q_pos + 1u); }

    let q_base = params.q_offset + batch * params.q_batch_stride + row * params.q_stride + head * dh;
    for (var d = lane; d < dh; d += WG) { q_row[d] = q[q_base + d]; }
    workgroupBarrier();

    let kv_batch = batch / params.kv_group;
    let use_table = (params.flags & FLAG_TABLE) != 0u;

    var running_max = NEG_INF;
    var running_sum = 0.0;
    var acc: array<f32, 4>;
    for (var i = 0u; i < DIMS_PER_LANE; i++) { acc[i] = 0.0; }

    for (var chunk = 0u; chunk < n_keys; chunk += WG) {
        let key = chunk + lane;
        var score = NEG_INF;
        var live = key < n_keys;
        if live && (params.flags & FLAG_KEY_MASK) != 0u {
            live = key_mask[kv_batch * params.mask_stride + key] != 0u;
        }
        if live {
            let kr = params.k_offset + key_row(kv_batch, key, use_table, params.k_stride, params.k_batch_stride) + head * dh;
            var dot = 0.0;
            for (var d = 0u; d < dh; d++) { dot = fma(q_row[d], k[kr + d], dot); }
            score = dot * params.scale;
            if (params.flags & FLAG_BIAS) != 0u {
                let bucket = bias_buckets[i32(params.bias_center) + i32(key) - i32(q_pos)];
                score += bias_table[bucket * params.heads + head];
            }
        }
        let chunk_max = chunk_reduce(score, lane, true);
        let new_max = max(running_max, chunk_max);
        var p = 0.0;
        if live { p = exp(score - new_max); }
        probs[lane] = p;
        let chunk_sum = chunk_reduce(p, lane, false);
        // All keys so far masked: new_max is still NEG_INF and nothing accumulates.
        let correction = select(exp(running_max - new_max), 1.0, running_max == new_max);
        running_sum = running_sum * correction + chunk_sum;
        let in_chunk = min(WG, n_keys - chunk);
        for (var i = 0u; i < DIMS_PER_LANE; i++) {
            let d = lane + i * WG;
            if d < dh {
                var sum = acc[i] * correction;
                for (var j = 0u; j < in_chunk; j++) {
                    let vr = key_row(kv_batch, chunk + j, use_table, params.v_stride, params.v_batch_stride);
                    sum = fma(probs[j], v[params.v_offset + vr + head * dh + d], sum);
                }
                acc[i] = sum;
            }
        }
        running_max = new_max;
        workgroupBarrier();
    }

    let inv = select(1.0 / running_sum, 0.0, running_sum == 0.0);
    let out_base = batch * params.out_batch_stride + row * params.out_stride + head * dh;
    for (var i = 0u; i < DIMS_PER_LANE; i++) {
        let d = lane + i * WG;
        if d < dh { out[out_base + d] = acc[i] * inv; }
    }
}
