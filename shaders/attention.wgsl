// Fused scaled dot-product attention for one (query row, head, batch item) per workgroup, or
// for one share of its keys when the keys are split across workgroups:
//   out = softmax(scale * q·kᵀ + bias + masks) · v
// computed in one pass over the keys with an online softmax (running max and sum), so the
// score matrix never reaches memory and any number of keys fits.
//
// Keys come in tiles of 64. Their dot products run DOT_LANES lanes per key along the head
// dimension: 16 on GPUs, so that neighbouring lanes read neighbouring elements of a key row
// (coalesced), 1 on CPU adapters (the module prepends the constant). Then each lane scores
// one key of the tile, and for the weighted sum of values each lane owns head dimensions,
// again reading along rows. The tile's max and the final sum go through
// `lanes_max`/`lanes_sum` (lanes_shared.wgsl or lanes_subgroups.wgsl, as the adapter allows).
//
// With params.splits above 1, workgroup x = row * splits + split covers one contiguous share
// of the row's keys and writes its running max, sum and unnormalised output to `out` as a
// record of head_dim + 2 values; attention_combine.wgsl merges the records. Decoding has one
// query row per item, so a long key range would otherwise leave most of a GPU idle.
//
// Q, K, V and the output are addressed by element offset and row/batch strides, so they can
// be column slices of a fused QKV projection, of the cross-attention K/V of every layer, or
// of the preallocated self-attention cache.
//
// Where the operands come from is the module's other piece: attention_io.wgsl binds Q as
// given; attention_projected.wgsl computes each workgroup's query from the input row (the
// decoder's cross-attention folds its query projection in). Keys and values are column
// slices of one buffer (a fused QKV projection, the cross-attention K/V, the cache). Each
// piece binds the parameters, `out` and the key mask, and defines load_query, load_kv,
// position_bias and table_entry.
//
// Options (flags): causal mask; T5's relative position bias, looked up per relative distance
// in a bucket table computed on the CPU exactly as transformers does; a key-padding mask;
// and positions taken from the decode step (the cache holds sequence_pos(item) earlier tokens).
// Parameters: grouped-query attention (head_group query heads read one key/value head), a
// sliding window (below), soft-capped scores (cap * tanh(score / cap), before masks, as Gemma), and a cache
// kept as a ring of `cache_rows` rows per sequence (key position p at row p % cache_rows).
// A row table gives, for each (sequence, position), the sequence whose cache rows hold it
// (beam search shares histories instead of copying them), or for a paged cache the block of
// the pool that holds it (continuous batching).


const FLAG_CAUSAL: u32 = 1u;
const FLAG_BIAS: u32 = 2u;
const FLAG_KEY_MASK: u32 = 4u;
const FLAG_STEP: u32 = 8u;
const FLAG_TABLE: u32 = 16u;

const TILE: u32 = 64u;
const KEYS_AT_ONCE: u32 = LANES / DOT_LANES;
// One padding column, so that the lanes summing their key's partial dots hit distinct banks.
const DOT_STRIDE: u32 = DOT_LANES + 1u;
const DIMS_PER_LANE: u32 = 4u; // MAX_HEAD_DIM / LANES

// The workgroup's query, which load_query writes.
var<workgroup> q_row: array<f32, 256>;
var<workgroup> partial_dots: array<f32, TILE * DOT_STRIDE>;
var<workgroup> probs: array<f32, 64>;

// Element offset of key position `key` of batch item `b` (before the column offset).
fn key_row(b: u32, key: u32, use_table: bool, stride: u32, batch_stride: u32) -> u32 {
    if params.block_rows != 0u {
        // A key past the table (an idle row's) stays in the row's last block.
        let entry = min(key / params.block_rows, params.table_stride - 1u);
        let block = table_entry(b * params.table_stride + entry);
        return (block * params.block_rows + key % params.block_rows) * stride;
    }
    var source = b;
    if use_table { source = table_entry(b * params.table_stride + key); }
    var slot = key;
    if params.cache_rows != 0u { slot = key % params.cache_rows; }
    return source * batch_stride + slot * stride;
}

@compute @workgroup_size(64)
fn attention_main(@builtin(workgroup_id) wg: vec3<u32>, ids: Lane) {
    let splits = params.splits;
    let row = wg.x / splits;
    let split = wg.x % splits;
    let head = wg.y;
    let batch = wg.z;
    let lane = ids.index;
    let dh = params.head_dim;

    var first_pos = 0u;
    var kv_len = params.kv_len;
    if (params.flags & FLAG_STEP) != 0u {
        first_pos = sequence_pos(batch);
        kv_len = first_pos + params.q_rows;
    }
    let q_pos = first_pos + row;
    // The keys this query sees: [first_key, last_key).
    var last_key = kv_len;
    if (params.flags & FLAG_CAUSAL) != 0u { last_key = min(kv_len, q_pos + 1u); }
    // A sliding window of W: a causal query sees its W latest keys (itself included), a
    // bidirectional one the keys at most W positions away on either side (T5Gemma's masks).
    var first_key = 0u;
    if params.window != 0u && (params.flags & FLAG_CAUSAL) != 0u {
        first_key = max(q_pos + 1u, params.window) - params.window;
    } else if params.window != 0u {
        first_key = max(q_pos, params.window) - params.window;
        last_key = min(last_key, q_pos + params.window + 1u);
    }
    let n_keys = max(last_key, first_key) - first_key;
    // Shares of the keys actually present, so every split has work at every step.
    let share = (n_keys + splits - 1u) / splits;
    let key_begin = first_key + min(split * share, n_keys);
    let key_end = min(key_begin + share, first_key + n_keys);
    let kv_head = head / params.head_group;

    load_query(row, head, batch, ids);
    workgroupBarrier();

    let kv_batch = batch / params.kv_group;
    let use_table = (params.flags & FLAG_TABLE) != 0u;
    let dot_lane = lane % DOT_LANES;
    let key_slot = lane / DOT_LANES;

    var running_max = NEG_INF;
    // This lane's keys' share of the softmax denominator, rescaled with the running max.
    var lane_sum = 0.0;
    var acc: array<f32, 4>;
    for (var i = 0u; i < DIMS_PER_LANE; i++) { acc[i] = 0.0; }

    for (var tile = key_begin; tile < key_end; tile += TILE) {
        let in_tile = min(TILE, key_end - tile);
        for (var group = 0u; group < in_tile; group += KEYS_AT_ONCE) {
            let j = group + key_slot;
            var dot = 0.0;
            if j < in_tile {
                let kr = params.k_offset + key_row(kv_batch, tile + j, use_table, params.k_stride, params.k_batch_stride) + kv_head * dh;
                for (var d = dot_lane; d < dh; d += DOT_LANES) { dot = fma(q_row[d], load_kv(kr + d), dot); }
            }
            partial_dots[j * DOT_STRIDE + dot_lane] = dot;
        }
        workgroupBarrier();

        let key = tile + lane;
        var live = lane < in_tile;
        if live && (params.flags & FLAG_KEY_MASK) != 0u {
            live = key_mask[kv_batch * params.mask_stride + key] != 0u;
        }
        var score = NEG_INF;
        if live {
            var dot = 0.0;
            for (var t = 0u; t < DOT_LANES; t++) { dot += partial_dots[lane * DOT_STRIDE + t]; }
            score = dot * params.scale;
            if params.softcap != 0.0 { score = tanh(score / params.softcap) * params.softcap; }
            if (params.flags & FLAG_BIAS) != 0u { score += position_bias(key, q_pos, head); }
        }
        let new_max = max(running_max, lanes_max(score, ids));
        var p = 0.0;
        if live { p = exp(score - new_max); }
        // All keys so far masked: new_max is still NEG_INF and nothing accumulates.
        let correction = select(exp(running_max - new_max), 1.0, running_max == new_max);
        lane_sum = lane_sum * correction + p;
        probs[lane] = p;
        workgroupBarrier();

        for (var i = 0u; i < DIMS_PER_LANE; i++) {
            let d = lane + i * LANES;
            if d < dh {
                var sum = acc[i] * correction;
                for (var j = 0u; j < in_tile; j++) {
                    let vr = key_row(kv_batch, tile + j, use_table, params.v_stride, params.v_batch_stride);
                    sum = fma(probs[j], load_kv(params.v_offset + vr + kv_head * dh + d), sum);
                }
                acc[i] = sum;
            }
        }
        running_max = new_max;
        // The next tile overwrites partial_dots and probs.
        workgroupBarrier();
    }

    let total = lanes_sum(lane_sum, ids);
    if splits > 1u {
        let record = partial_record(row, head, batch, split);
        if lane == 0u {
            out[record] = running_max;
            out[record + 1u] = total;
        }
        for (var i = 0u; i < DIMS_PER_LANE; i++) {
            let d = lane + i * LANES;
            if d < dh { out[record + 2u + d] = acc[i]; }
        }
        return;
    }
    let inv = select(1.0 / total, 0.0, total == 0.0);
    let out_base = batch * params.out_batch_stride + row * params.out_stride + head * dh;
    for (var i = 0u; i < DIMS_PER_LANE; i++) {
        let d = lane + i * LANES;
        if d < dh { out[out_base + d] = acc[i] * inv; }
    }
}
