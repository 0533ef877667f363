// Rotary position embeddings (RoPE) of the queries and keys of a fused QKV projection, in
// the rotate-half layout transformers uses: for head dimensions i < half and i + half,
//   x_i' = x_i cos - x_{i+half} sin,   x_{i+half}' = x_{i+half} cos + x_i sin,
// with cos and sin of the row's position from a table computed on the CPU as transformers
// computes it (f32). Row r of a sequence sits at position first + r % rows_per_sequence,
// first being the sequence's decode position when decoding. Queries rotate in place. Keys rotate in place, or with
// FLAG_APPEND go to the self-attention cache with the values (the cache append of a rotary
// model, which must see rotated keys): at row position % cache_rows of their sequence, a
// ring where a sliding window keeps fewer rows than positions.

struct RotaryParams {
    rows: u32,
    rows_per_sequence: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    // The QKV row stride; queries at column 0, keys after heads * head_dim, values after the keys.
    stride: u32,
    flags: u32,
    table_rows: u32,
    cache_rows: u32,
    // A paged cache (block_rows > 0): position p of sequence s is in block
    // pages[s * table_stride + p / block_rows] of the pool (see kv_cache.wgsl).
    block_rows: u32,
    table_stride: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: RotaryParams;
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;
// [table_rows, head_dim]: cos of each frequency, then its sin.
@group(0) @binding(3) var<storage, read> table: array<f32>;
@group(0) @binding(4) var<storage, read_write> cache: array<f32>;
@group(0) @binding(5) var<storage, read> pages: array<u32>;

const FLAG_STEP: u32 = 1u;
const FLAG_APPEND: u32 = 2u;

// Rotates the pair (i, i + half) of the head at `base` by the angles of table row `pos`,
// returning the rotated values.
fn rotate(base: u32, i: u32, pos: u32) -> vec2<f32> {
    let half = params.head_dim / 2u;
    let c = table[pos * params.head_dim + i];
    let s = table[pos * params.head_dim + half + i];
    let a = qkv[base + i];
    let b = qkv[base + half + i];
    return vec2(a * c - b * s, b * c + a * s);
}

@compute @workgroup_size(64)
fn rotary_main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let row = wg.x + wg.y * groups.x;
    if row >= params.rows { return; }
    let half = params.head_dim / 2u;
    var pos = row % params.rows_per_sequence;
    if (params.flags & FLAG_STEP) != 0u { pos += sequence_pos(row / params.rows_per_sequence); }
    pos = min(pos, params.table_rows - 1u);
    let base = row * params.stride;
    let inner = params.heads * params.head_dim;
    let kv_dim = params.kv_heads * params.head_dim;
    for (var t = lane; t < params.heads * half; t += 64u) {
        let at = base + (t / half) * params.head_dim;
        let i = t % half;
        let r = rotate(at, i, pos);
        qkv[at + i] = r.x;
        qkv[at + half + i] = r.y;
    }
    let append = (params.flags & FLAG_APPEND) != 0u;
    let sequence = row / params.rows_per_sequence;
    var cache_row = sequence * params.cache_rows + pos % params.cache_rows;
    if params.block_rows != 0u {
        let entry = min(pos / params.block_rows, params.table_stride - 1u);
        let block = pages[sequence * params.table_stride + entry];
        cache_row = block * params.block_rows + pos % params.block_rows;
    }
    let cache_base = cache_row * 2u * kv_dim;
    for (var t = lane; t < params.kv_heads * half; t += 64u) {
        let head = t / half;
        let at = base + inner + head * params.head_dim;
        let i = t % half;
        let r = rotate(at, i, pos);
        if append {
            cache[cache_base + head * params.head_dim + i] = r.x;
            cache[cache_base + head * params.head_dim + half + i] = r.y;
        } else {
            qkv[at + i] = r.x;
            qkv[at + half + i] = r.y;
        }
    }
    if append {
        for (var c = lane; c < kv_dim; c += 64u) {
            cache[cache_base + kv_dim + c] = qkv[base + inner + kv_dim + c];
        }
    }
}
