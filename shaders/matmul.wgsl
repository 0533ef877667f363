// out[m, n] (+)= cap(alpha * act(sum_k a[m, k] * w[n, k] + bias[n]))
// where cap(v) = softcap * tanh(v / softcap) when softcap is set (Gemma's logits), else v.
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
    // The fused decode kernel's: the norm's epsilon, and for the KV append the first column
    // that goes to the cache, the cache's row width, tokens per sequence and rows per
    // sequence of the cache (a ring when fewer than the positions); then every kernel's soft
    // cap of the outputs (0: none).
    eps: f32,
    split: u32,
    cache_stride: u32,
    rows_per_sequence: u32,
    capacity: u32,
    softcap: f32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> params: MatmulParams;
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

// The epilogue's scale, activation and soft cap of a finished sum.
fn finish(v: f32) -> f32 {
    let scaled = params.alpha * activate(v, params.activation);
    if params.softcap != 0.0 { return tanh(scaled / params.softcap) * params.softcap; }
    return scaled;
}

fn store_output(row: u32, col: u32, value: f32) {
    if row >= params.m || col >= params.n { return; }
    var v = value * weight_scale(col);
    if (params.flags & FLAG_BIAS) != 0u { v = v + bias[col]; }
    v = finish(v);
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
// - an input norm (RMSNorm or LayerNorm) applied to the rows as they are read. Every
//   workgroup reads the few rows whole anyway: their squares are summed beside the product,
//   and the norm's weights fold into each weight once, as
//   sum_k norm(x)_k w_k = scale * sum_k (x_k - mean) g_k w_k + sum_k beta_k w_k. LayerNorm's
//   mean takes one workgroup reduction first (two passes, as torch and norm.wgsl do).
// - the KV append: output columns from `split` on go to the self-attention cache (`side`),
//   at the rows after the `sequence_pos` tokens each sequence holds (a ring of `capacity` rows);
// - a gated activation: output column c is alpha * act(x . w_c) * (x . w_{n + c}), the
//   weight holding the gate rows then the linear rows;
// - a normalised residual (post-norm models, whose norm follows the residual add): out =
//   value + norm(side)[row, col], `side` being the residual stream [rows, n] with its last
//   sublayer's norm still to apply. The norm's flags then describe the side rows, not the
//   input (no sublayer's output matmul reads a normalised input). Every workgroup reads the
//   few side rows whole for their statistics, so `out` is another buffer;
// - an SSRU cell (Marian's tiny decoders, one token per sequence), on the gated layout of
//   candidate rows then forget-gate rows: c = f * c_prev + (1 - f) * candidate with the
//   state c in `side` [rows, n], and out = relu(c) + the (normalised) input row itself, as
//   shaders/ssru.wgsl computes it;
// - the first stage of a greedy choice (an output layer whose logits only feed an argmax):
//   instead of the logits, each workgroup writes each row's best of its 4 columns to `side`
//   ([rows, workgroups, 2]: the value, then the column as f32, -1 where all are NaN), and
//   argmax.wgsl's argmax_partials_main picks among those.
const FLAG_RMS: u32 = 4u;
const FLAG_LAYER_NORM: u32 = 8u;
const FLAG_APPEND: u32 = 16u;
const FLAG_GATED: u32 = 32u;
const FLAG_SIDE_RESIDUAL: u32 = 64u;
const FLAG_SSRU: u32 = 128u;
const FLAG_ARGMAX: u32 = 256u;

// The norm's weight, then LayerNorm's bias.
@group(0) @binding(7) var<storage, read> norm: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> side: array<f32>;

// Column group 0's squared inputs per row, and every lane's beta term.
var<workgroup> square_partial: array<f32, 512>; // SKINNY_ROWS * 64
var<workgroup> beta_partial: array<f32, 256>;
// Each column group's value per row for the argmax stage ([group][row]), and whether it
// is a number (no column, or NaN, never wins).
var<workgroup> group_values: array<f32, 32>;
var<workgroup> group_valid: array<u32, 32>;

fn norm_value(i: u32) -> f32 {
    return norm[i >> 2u][i & 3u];
}

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

// Each row's sum of every invocation's share in `sums`.
fn workgroup_row_sums(lid: u32, rows: u32, sums: array<f32, 8>) -> array<f32, 8> {
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
    var totals: array<f32, 8>;
    for (var r = 0u; r < rows; r++) { totals[r] = partial[r * 256u]; }
    workgroupBarrier();
    return totals;
}

// Each input row's mean.
fn input_means(lid: u32, rows: u32) -> array<f32, 8> {
    let k4 = params.k / 4u;
    var sums: array<f32, 8>;
    for (var kq = lid; kq < k4; kq += 256u) {
        for (var r = 0u; r < rows; r++) { sums[r] += dot(a[row_base4(r) + kq], vec4(1.0)); }
    }
    var means = workgroup_row_sums(lid, rows, sums);
    for (var r = 0u; r < rows; r++) { means[r] /= f32(params.k); }
    return means;
}

// Each side row's mean (0 for RMSNorm) and reciprocal deviation, in two passes as
// norm.wgsl takes them.
fn side_row_stats(lid: u32, rows: u32, layer_norm: bool) -> array<vec2<f32>, 8> {
    let n = params.n;
    var means: array<f32, 8>;
    if layer_norm {
        var sums: array<f32, 8>;
        for (var c = lid; c < n; c += 256u) {
            for (var r = 0u; r < rows; r++) { sums[r] += side[r * n + c]; }
        }
        means = workgroup_row_sums(lid, rows, sums);
        for (var r = 0u; r < rows; r++) { means[r] /= f32(n); }
    }
    var squares: array<f32, 8>;
    for (var c = lid; c < n; c += 256u) {
        for (var r = 0u; r < rows; r++) {
            let d = side[r * n + c] - means[r];
            squares[r] += d * d;
        }
    }
    let totals = workgroup_row_sums(lid, rows, squares);
    var stats: array<vec2<f32>, 8>;
    for (var r = 0u; r < rows; r++) {
        stats[r] = vec2(means[r], inverseSqrt(totals[r] / f32(n) + params.eps));
    }
    return stats;
}

// norm(value) at column `col` of a row with `stats` (mean, reciprocal deviation), for a norm
// over `dim` values: as norm.wgsl writes it.
fn normalised(value: f32, col: u32, dim: u32, stats: vec2<f32>, layer_norm: bool) -> f32 {
    if layer_norm { return (value - stats.x) * stats.y * norm_value(col) + norm_value(dim + col); }
    return norm_value(col) * (value * stats.y);
}

// The finished value of row r for the weight row whose sums sit at lane `first` of a group.
fn fused_value(r: u32, first: u32, w_row: u32, normed: bool) -> f32 {
    var v = partial[r * 256u + first];
    if normed {
        v = v * input_deviation(r) + beta_partial[first];
    }
    v = v * weight_scale(w_row);
    if (params.flags & FLAG_BIAS) != 0u { v = v + bias[w_row]; }
    return v;
}

// The reciprocal deviation of input row r (after reduce_norm_terms).
fn input_deviation(r: u32) -> f32 {
    return inverseSqrt(square_partial[r * 64u] / f32(params.k) + params.eps);
}

fn store_fused(row: u32, col: u32, value: f32) {
    if (params.flags & FLAG_APPEND) != 0u && col >= params.split {
        let sequence = row / params.rows_per_sequence;
        let position = sequence_pos(sequence) + row % params.rows_per_sequence;
        let cache_row = sequence * params.capacity + position % params.capacity;
        side[cache_row * params.cache_stride + col - params.split] = value;
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
    let layer_norm = (params.flags & FLAG_LAYER_NORM) != 0u;
    let has_norm = (params.flags & (FLAG_RMS | FLAG_LAYER_NORM)) != 0u;
    let side_residual = (params.flags & FLAG_SIDE_RESIDUAL) != 0u;
    // Whether the norm applies to the input rows (else to the side rows, or there is none).
    let normed = has_norm && !side_residual;
    var means: array<f32, 8>;
    if normed && layer_norm { means = input_means(lid.x, rows); }
    var side_stats: array<vec2<f32>, 8>;
    if side_residual && has_norm { side_stats = side_row_stats(lid.x, rows, layer_norm); }
    let lane = lid.x % 64u;
    let group = lid.x / 64u;
    let ssru = (params.flags & FLAG_SSRU) != 0u;
    let paired = ssru || (params.flags & FLAG_GATED) != 0u;
    // Paired, a workgroup makes 2 output columns: groups 0 and 1 their first-half rows (gate
    // or candidate), 2 and 3 their second-half rows (linear or forget gate).
    var col = wg.x * 4u + group;
    var w_row = col;
    if paired {
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
            if layer_norm { beta += dot(norm[k4 + kq], wv); }
            wv *= norm[kq];
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
    if (params.flags & FLAG_ARGMAX) != 0u {
        argmax_stage(wg.x, lid.x, rows, col, w_row, normed);
        return;
    }
    if lane != 0u || col >= params.n || (paired && group >= 2u) { return; }
    for (var r = 0u; r < rows; r++) {
        let v = fused_value(r, lid.x, w_row, normed);
        if ssru {
            let forget = 1.0 / (1.0 + exp(-fused_value(r, lid.x + 128u, w_row + params.n, normed)));
            let state = r * params.n + col;
            let c = forget * select(side[state], 0.0, sequence_pos(r) == 0u) + (1.0 - forget) * v;
            side[state] = c;
            var input = a[row_base4(r) + col / 4u][col % 4u];
            if normed {
                let stats = vec2(means[r], input_deviation(r));
                input = normalised(input, col, params.k, stats, layer_norm);
            }
            store_fused(r, col, max(c, 0.0) + input);
        } else if paired {
            let linear = fused_value(r, lid.x + 128u, w_row + params.n, normed);
            store_fused(r, col, params.alpha * activate(v, params.activation) * linear);
        } else {
            var value = finish(v);
            if side_residual {
                var residual = side[r * params.n + col];
                if has_norm { residual = normalised(residual, col, params.n, side_stats[r], layer_norm); }
                value = residual + value;
            }
            store_fused(r, col, value);
        }
    }
}

// Each row's best of the workgroup's 4 columns, the lowest column on ties as torch.argmax
// takes it, into `side` (see FLAG_ARGMAX).
fn argmax_stage(wg: u32, lid: u32, rows: u32, col: u32, w_row: u32, normed: bool) {
    let group = lid / 64u;
    if lid % 64u == 0u {
        for (var r = 0u; r < rows; r++) {
            var value = 0.0;
            if col < params.n {
                value = finish(fused_value(r, lid, w_row, normed));
            }
            group_values[group * SKINNY_ROWS + r] = value;
            group_valid[group * SKINNY_ROWS + r] = u32(col < params.n && value == value);
        }
    }
    workgroupBarrier();
    if lid != 0u { return; }
    let partials = (params.n + 3u) / 4u;
    for (var r = 0u; r < rows; r++) {
        var best = 0.0;
        var best_col = -1.0;
        for (var g = 0u; g < 4u; g++) {
            let v = group_values[g * SKINNY_ROWS + r];
            // Strict > keeps the lower column.
            if group_valid[g * SKINNY_ROWS + r] != 0u && (best_col < 0.0 || v > best) {
                best = v;
                best_col = f32(wg * 4u + g);
            }
        }
        let at = 2u * (r * partials + wg);
        side[at] = best;
        side[at + 1u] = best_col;
    }
}
