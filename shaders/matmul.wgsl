// out[m, n] (+)= alpha * act(sum_k a[m, k] * w[n, k] + bias[n])
// The x · Wᵀ form of a Linear layer whose weight is stored [out_features, in_features].
//
// Operands are bound as arrays of vec4 so that the `_vec4` kernels move 16 bytes per load;
// they need K, the row stride and the offset of `a` to be multiples of 4, which every real
// model's widths are. The scalar kernels take any shape and index single elements of the
// same bindings (buffers are allocated in multiples of 16 bytes).

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    // Bit 0: add bias. Bit 1: accumulate into out instead of overwriting it.
    flags: u32,
    activation: u32,
    alpha: f32,
    // Element offsets and row strides, so an operand can be a column slice of a wider buffer.
    a_offset: u32,
    a_stride: u32,
    out_offset: u32,
    out_stride: u32,
    // The fused decode kernel's: the input norm's epsilon, and for the KV append the first
    // column that goes to the cache, the cache's row width, tokens per sequence and rows per
    // sequence of the cache.
    eps: f32,
    split: u32,
    cache_stride: u32,
    rows_per_sequence: u32,
    capacity: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(2) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const FLAG_BIAS: u32 = 1u;
const FLAG_ACCUMULATE: u32 = 2u;

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS: u32 = 256u;

fn load_a(i: u32) -> f32 {
    return a[i >> 2u][i & 3u];
}

fn store_output(row: u32, col: u32, value: f32) {
    if row >= params.m || col >= params.n { return; }
    var v = value * weight_scale(col);
    if (params.flags & FLAG_BIAS) != 0u { v = v + bias[col]; }
    v = params.alpha * activate(v, params.activation);
    let idx = params.out_offset + row * params.out_stride + col;
    if (params.flags & FLAG_ACCUMULATE) != 0u { v = v + out[idx]; }
    out[idx] = v;
}

// Workgroup tiling: a 64x64 output tile per workgroup, walking K in slices of 16 staged in
// workgroup memory, k-major so that the inner loop reads consecutive rows (or columns) as
// one vec4. Register tiling: each of the 16x16 invocations accumulates a 4x4 block, so every
// value read from workgroup memory feeds 4 multiply-adds.
var<workgroup> a_tile: array<vec4<f32>, 256>; // [TILE_K][TILE_M / 4]
var<workgroup> w_tile: array<vec4<f32>, 256>; // [TILE_K][TILE_N / 4]

fn multiply_tile(lid: vec2<u32>, acc: ptr<function, array<vec4<f32>, 4>>) {
    for (var kk = 0u; kk < TILE_K; kk++) {
        let av = a_tile[kk * 16u + lid.y];
        let wv = w_tile[kk * 16u + lid.x];
        (*acc)[0] = fma(vec4(av.x), wv, (*acc)[0]);
        (*acc)[1] = fma(vec4(av.y), wv, (*acc)[1]);
        (*acc)[2] = fma(vec4(av.z), wv, (*acc)[2]);
        (*acc)[3] = fma(vec4(av.w), wv, (*acc)[3]);
    }
}

fn store_tile(row0: u32, col0: u32, lid: vec2<u32>, acc: array<vec4<f32>, 4>) {
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store_output(row0 + lid.y * 4u + i, col0 + lid.x * 4u + j, acc[i][j]);
        }
    }
}

// Any shape: each invocation stages 4 single elements of each operand per K slice.
@compute @workgroup_size(16, 16)
fn matmul_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let row0 = wg.y * TILE_M;
    let col0 = wg.x * TILE_N;
    var acc: array<vec4<f32>, 4>;
    let k_tiles = (params.k + TILE_K - 1u) / TILE_K;
    for (var t = 0u; t < k_tiles; t++) {
        for (var r = 0u; r < 4u; r++) {
            // Consecutive invocations read consecutive k.
            let e = tid + r * THREADS;
            let tile_row = e / TILE_K;
            let kk = e % TILE_K;
            let kg = t * TILE_K + kk;
            let ar = row0 + tile_row;
            var av = 0.0;
            if ar < params.m && kg < params.k { av = load_a(params.a_offset + ar * params.a_stride + kg); }
            a_tile[kk * 16u + tile_row / 4u][tile_row % 4u] = av;
            let wr = col0 + tile_row;
            var wv = 0.0;
            if wr < params.n && kg < params.k { wv = load_w(wr * params.k + kg); }
            w_tile[kk * 16u + tile_row / 4u][tile_row % 4u] = wv;
        }
        workgroupBarrier();
        multiply_tile(lid.xy, &acc);
        workgroupBarrier();
    }
    store_tile(row0, col0, lid.xy, acc);
}

// K, a's stride and a's offset multiples of 4: each invocation stages one vec4 of each
// operand per K slice.
@compute @workgroup_size(16, 16)
fn matmul_vec4_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let row0 = wg.y * TILE_M;
    let col0 = wg.x * TILE_N;
    let k4 = params.k / 4u;
    let tile_row = tid / 4u;
    let quad = tid % 4u;
    let ar = row0 + tile_row;
    let wr = col0 + tile_row;
    let a_base = (params.a_offset + ar * params.a_stride) / 4u;
    var acc: array<vec4<f32>, 4>;
    let k_tiles = (params.k + TILE_K - 1u) / TILE_K;
    for (var t = 0u; t < k_tiles; t++) {
        let kq = t * 4u + quad;
        var av = vec4(0.0);
        if ar < params.m && kq < k4 { av = a[a_base + kq]; }
        var wv = vec4(0.0);
        if wr < params.n && kq < k4 { wv = load_w4(wr * k4 + kq); }
        for (var c = 0u; c < 4u; c++) {
            let slot = (quad * 4u + c) * 16u + tile_row / 4u;
            a_tile[slot][tile_row % 4u] = av[c];
            w_tile[slot][tile_row % 4u] = wv[c];
        }
        workgroupBarrier();
        multiply_tile(lid.xy, &acc);
        workgroupBarrier();
    }
    store_tile(row0, col0, lid.xy, acc);
}

// The textbook kernel, kept as the benchmark's baseline: 16x16 tiles staged in workgroup
// memory, one output per invocation, so every staged value feeds a single multiply-add.
var<workgroup> simple_a: array<f32, 256>;
var<workgroup> simple_w: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn simple_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.y * 16u + lid.y;
    let w_row = wg.x * 16u + lid.y;
    var sum = 0.0;
    for (var k0 = 0u; k0 < params.k; k0 += 16u) {
        let kg = k0 + lid.x;
        var av = 0.0;
        if row < params.m && kg < params.k { av = load_a(params.a_offset + row * params.a_stride + kg); }
        simple_a[lid.y * 16u + lid.x] = av;
        var wv = 0.0;
        if w_row < params.n && kg < params.k { wv = load_w(w_row * params.k + kg); }
        simple_w[lid.y * 16u + lid.x] = wv;
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            sum = fma(simple_a[lid.y * 16u + kk], simple_w[lid.x * 16u + kk], sum);
        }
        workgroupBarrier();
    }
    store_output(row, wg.x * 16u + lid.x, sum);
}

// Skinny form for decode with at most 8 rows (a batch or the beams of one step): each
// output column is read by `lanes` invocations with unit stride along the weight row, for
// every input row at once, then reduced in workgroup memory. The tiled kernel would leave
// most rows of its 64-row tile idle and read the weights the same number of times.
// GPUs use 64 lanes per column (4 columns per workgroup): wide coalesced loads. CPU adapters
// (lavapipe, SwiftShader) run a workgroup's invocations in SIMD batches and pay for every
// barrier and reduction step of every workgroup, so there the narrow form gives each column
// 4 lanes (64 columns per workgroup): 16 times fewer workgroups, each lane doing 16 times
// the products (2.8x faster per decoded token on lavapipe, see BENCHMARKS.md).
const SKINNY_ROWS: u32 = 8u;
var<workgroup> partial: array<f32, 2048>; // SKINNY_ROWS * 256

// Sums each column's `lanes` partial sums per row, leaving them at its first lane.
fn reduce_groups(lid: u32, lane: u32, lanes: u32, rows: u32, sums: array<f32, 8>) {
    for (var r = 0u; r < SKINNY_ROWS; r++) { partial[r * 256u + lid] = sums[r]; }
    workgroupBarrier();
    for (var width = lanes / 2u; width > 0u; width >>= 1u) {
        if lane < width {
            for (var r = 0u; r < rows; r++) {
                partial[r * 256u + lid] += partial[r * 256u + lid + width];
            }
        }
        workgroupBarrier();
    }
}

fn reduce_and_store(lid: u32, lanes: u32, col: u32, rows: u32, sums: array<f32, 8>) {
    let lane = lid % lanes;
    reduce_groups(lid, lane, lanes, rows, sums);
    if lane == 0u {
        for (var r = 0u; r < rows; r++) { store_output(r, col, partial[r * 256u + lid]); }
    }
}

fn matvec_columns(wg: u32, lid: u32, lanes: u32) {
    let lane = lid % lanes;
    let col = wg * (256u / lanes) + lid / lanes;
    let rows = min(params.m, SKINNY_ROWS);
    var sums: array<f32, 8>;
    if col < params.n {
        let w_base = col * params.k;
        for (var kk = lane; kk < params.k; kk += lanes) {
            let wv = load_w(w_base + kk);
            for (var r = 0u; r < rows; r++) {
                sums[r] = fma(load_a(params.a_offset + r * params.a_stride + kk), wv, sums[r]);
            }
        }
    }
    reduce_and_store(lid, lanes, col, rows, sums);
}

fn row_base4(r: u32) -> u32 {
    return (params.a_offset + r * params.a_stride) / 4u;
}

// Each input row's products with weight row `w_row`, over the k of this lane's share.
fn row_sums4(w_row: u32, lane: u32, lanes: u32, rows: u32) -> array<f32, 8> {
    let k4 = params.k / 4u;
    var sums: array<f32, 8>;
    for (var kq = lane; kq < k4; kq += lanes) {
        let wv = load_w4(w_row * k4 + kq);
        for (var r = 0u; r < rows; r++) { sums[r] += dot(a[row_base4(r) + kq], wv); }
    }
    return sums;
}

fn matvec_columns_vec4(wg: u32, lid: u32, lanes: u32) {
    let lane = lid % lanes;
    let col = wg * (256u / lanes) + lid / lanes;
    let rows = min(params.m, SKINNY_ROWS);
    var sums: array<f32, 8>;
    if col < params.n { sums = row_sums4(col, lane, lanes, rows); }
    reduce_and_store(lid, lanes, col, rows, sums);
}

@compute @workgroup_size(256)
fn matvec_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    matvec_columns(wg.x, lid.x, 64u);
}

@compute @workgroup_size(256)
fn matvec_vec4_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    matvec_columns_vec4(wg.x, lid.x, 64u);
}

@compute @workgroup_size(256)
fn matvec_narrow_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    matvec_columns(wg.x, lid.x, 4u);
}

@compute @workgroup_size(256)
fn matvec_narrow_vec4_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    matvec_columns_vec4(wg.x, lid.x, 4u);
}

// The skinny vec4 kernel with the decode step's neighbours folded in, chosen by flags:
// The skinny vec4 kernel with the decode step's neighbours folded in, chosen by flags:
// - an input norm (RMSNorm or LayerNorm) applied to the rows as they are read. Every
//   workgroup reads the few rows whole anyway: their squares are summed beside the product,
//   and the norm's weights fold into each weight once, as
//   sum_k norm(x)_k w_k = scale * sum_k (x_k - mean) g_k w_k + sum_k beta_k w_k. LayerNorm's
//   mean takes one workgroup reduction first (two passes, as torch and norm.wgsl do).
// - the KV append: output columns from `split` on go to the self-attention cache, at the
//   rows after the `step.pos` tokens each sequence holds;
// - a gated activation: output column c is alpha * act(x . w_c) * (x . w_{n + c}), the
//   weight holding the gate rows then the linear rows.
const FLAG_RMS_INPUT: u32 = 4u;
const FLAG_LAYER_NORM_INPUT: u32 = 8u;
const FLAG_APPEND: u32 = 16u;
const FLAG_GATED: u32 = 32u;

@group(0) @binding(7) var<storage, read> norm_weight: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> norm_bias: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> cache: array<f32>;

// Column group 0's squared inputs per row, and every lane's beta term.
var<workgroup> square_partial: array<f32, 512>; // SKINNY_ROWS * 64
var<workgroup> beta_partial: array<f32, 256>;

fn reduce_norm_terms(lid: u32, lane: u32, rows: u32, squares: array<f32, 8>, beta: f32) {
    if lid < 64u {
        for (var r = 0u; r < SKINNY_ROWS; r++) { square_partial[r * 64u + lid] = squares[r]; }
    }
    beta_partial[lid] = beta;
    workgroupBarrier();
    for (var width = 32u; width > 0u; width >>= 1u) {
        if lane < width {
            if lid < 64u {
                for (var r = 0u; r < rows; r++) {
                    square_partial[r * 64u + lid] += square_partial[r * 64u + lid + width];
                }
            }
            beta_partial[lid] += beta_partial[lid + width];
        }
        workgroupBarrier();
    }
}

// Each input row's mean, from every invocation's share of it.
fn input_means(lid: u32, rows: u32) -> array<f32, 8> {
    let k4 = params.k / 4u;
    var sums: array<f32, 8>;
    for (var kq = lid; kq < k4; kq += 256u) {
        for (var r = 0u; r < rows; r++) { sums[r] += dot(a[row_base4(r) + kq], vec4(1.0)); }
    }
    for (var r = 0u; r < SKINNY_ROWS; r++) { partial[r * 256u + lid] = sums[r]; }
    workgroupBarrier();
    for (var width = 128u; width > 0u; width >>= 1u) {
        if lid < width {
            for (var r = 0u; r < rows; r++) {
                partial[r * 256u + lid] += partial[r * 256u + lid + width];
            }
        }
        workgroupBarrier();
    }
    var means: array<f32, 8>;
    for (var r = 0u; r < rows; r++) { means[r] = partial[r * 256u] / f32(params.k); }
    workgroupBarrier();
    return means;
}

// The finished value of row r for the weight row whose sums sit at lane `first` of a group.
fn fused_value(r: u32, first: u32, w_row: u32, normed: bool) -> f32 {
    var v = partial[r * 256u + first];
    if normed {
        let scale = inverseSqrt(square_partial[r * 64u] / f32(params.k) + params.eps);
        v = v * scale + beta_partial[first];
    }
    v = v * weight_scale(w_row);
    if (params.flags & FLAG_BIAS) != 0u { v = v + bias[w_row]; }
    return v;
}

fn store_fused(row: u32, col: u32, value: f32) {
    if (params.flags & FLAG_APPEND) != 0u && col >= params.split {
        let sequence = row / params.rows_per_sequence;
        let cache_row = sequence * params.capacity + step.pos + row % params.rows_per_sequence;
        cache[cache_row * params.cache_stride + col - params.split] = value;
        return;
    }
    let idx = params.out_offset + row * params.out_stride + col;
    var v = value;
    if (params.flags & FLAG_ACCUMULATE) != 0u { v = v + out[idx]; }
    out[idx] = v;
}

@compute @workgroup_size(256)
fn matvec_fused_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let rows = min(params.m, SKINNY_ROWS);
    let normed = (params.flags & (FLAG_RMS_INPUT | FLAG_LAYER_NORM_INPUT)) != 0u;
    let layer_norm = (params.flags & FLAG_LAYER_NORM_INPUT) != 0u;
    var means: array<f32, 8>;
    if layer_norm { means = input_means(lid.x, rows); }
    let lane = lid.x % 64u;
    let group = lid.x / 64u;
    let gated = (params.flags & FLAG_GATED) != 0u;
    // Gated, a workgroup makes 2 output columns: groups 0 and 1 their gates, 2 and 3 the
    // linear halves.
    var col = wg.x * 4u + group;
    var w_row = col;
    if gated {
        col = wg.x * 2u + group % 2u;
        w_row = col + (group / 2u) * params.n;
    }
    let k4 = params.k / 4u;
    var sums: array<f32, 8>;
    var squares: array<f32, 8>;
    var beta = 0.0;
    if col < params.n && normed {
        for (var kq = lane; kq < k4; kq += 64u) {
            var wv = load_w4(w_row * k4 + kq);
            if layer_norm { beta += dot(norm_bias[kq], wv); }
            wv *= norm_weight[kq];
            for (var r = 0u; r < rows; r++) {
                let d = a[row_base4(r) + kq] - vec4(means[r]);
                sums[r] += dot(d, wv);
                squares[r] += dot(d, d);
            }
        }
    } else if col < params.n {
        sums = row_sums4(w_row, lane, 64u, rows);
    }
    reduce_groups(lid.x, lane, 64u, rows, sums);
    if normed { reduce_norm_terms(lid.x, lane, rows, squares, beta); }
    if lane != 0u || col >= params.n || (gated && group >= 2u) { return; }
    for (var r = 0u; r < rows; r++) {
        let v = fused_value(r, lid.x, w_row, normed);
        if gated {
            let linear = fused_value(r, lid.x + 128u, w_row + params.n, normed);
            store_fused(r, col, params.alpha * activate(v, params.activation) * linear);
        } else {
            store_fused(r, col, params.alpha * activate(v, params.activation));
        }
    }
}
