// The operands of attention.wgsl when the kernel computes its query itself: the decoder's
// cross-attention, whose query projection reads the stream and nothing else. Each
// workgroup projects its input row onto its head's rows of the query weight (read through
// the weight reader at bindings 3 and 6), with the input norm folded in as the fused matmul
// folds it (sum_k norm(x)_k w_k = scale * sum_k (x_k - mean) g_k w_k + sum_k beta_k w_k)
// and the bias added; keys and values are column slices of one buffer (the cross-attention
// keys and values of every layer). No position bias or row table: cross-attention has none.
// Its 8 storage bindings are WebGPU's default limit, so its parameters are a uniform buffer.

@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> q_bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
// The norm's weight, then LayerNorm's bias.
@group(0) @binding(7) var<storage, read> norm: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> kv: array<f32>;
@group(0) @binding(9) var<storage, read> key_mask: array<u32>;

const FLAG_QUERY_RMS: u32 = 32u;
const FLAG_QUERY_LAYER_NORM: u32 = 64u;
const FLAG_QUERY_BIAS: u32 = 128u;

fn load_query(row: u32, head: u32, batch: u32, ids: Lane) {
    let lane = ids.index;
    let k4 = params.model_dim / 4u;
    let base = (params.q_offset + batch * params.q_batch_stride + row * params.q_stride) / 4u;
    let layer_norm = (params.flags & FLAG_QUERY_LAYER_NORM) != 0u;
    let normed = layer_norm || (params.flags & FLAG_QUERY_RMS) != 0u;
    // The row's mean (LayerNorm) and reciprocal deviation, in two passes as norm.wgsl takes
    // them.
    var mean = 0.0;
    var deviation = 1.0;
    if normed {
        if layer_norm {
            var sum = 0.0;
            for (var kq = lane; kq < k4; kq += LANES) { sum += dot(x[base + kq], vec4(1.0)); }
            mean = lanes_sum(sum, ids) / f32(params.model_dim);
        }
        var squares = 0.0;
        for (var kq = lane; kq < k4; kq += LANES) {
            let d = x[base + kq] - vec4(mean);
            squares += dot(d, d);
        }
        deviation = inverseSqrt(lanes_sum(squares, ids) / f32(params.model_dim) + params.eps);
    }
    // Each lane makes head dimensions of its own, reading its weight row along k.
    for (var j = lane; j < params.head_dim; j += LANES) {
        let w_row = head * params.head_dim + j;
        var acc = 0.0;
        var beta = 0.0;
        for (var kq = 0u; kq < k4; kq++) {
            var wv = load_w4(w_row * k4 + kq);
            if normed {
                if layer_norm { beta += dot(norm[k4 + kq], wv); }
                wv *= norm[kq];
            }
            acc += dot(x[base + kq] - vec4(mean), wv);
        }
        var value = acc;
        if normed { value = value * deviation + beta; }
        value = value * weight_scale(w_row);
        if (params.flags & FLAG_QUERY_BIAS) != 0u { value = value + q_bias[w_row]; }
        q_row[j] = value;
    }
}

fn load_kv(i: u32) -> f32 {
    return kv[i];
}

fn position_bias(key: u32, q_pos: u32, head: u32) -> f32 {
    return 0.0;
}

fn table_entry(i: u32) -> u32 {
    return i;
}
