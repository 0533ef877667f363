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
    _pad0: u32,
    _pad1: u32,
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

// Skinny form for decode with at most 8 rows (a batch or the beams of one step): one
// workgroup per 4 output columns, 64 invocations per column reading the weight row once with
// unit stride for every input row, then reducing in workgroup memory. The tiled kernel would
// leave most rows of its 64-row tile idle and read the weights the same number of times.
const SKINNY_ROWS: u32 = 8u;
var<workgroup> partial: array<f32, 2048>; // SKINNY_ROWS * 256

fn reduce_and_store(lid: u32, lane: u32, col: u32, rows: u32, sums: array<f32, 8>) {
    for (var r = 0u; r < SKINNY_ROWS; r++) { partial[r * 256u + lid] = sums[r]; }
    workgroupBarrier();
    for (var width = 32u; width > 0u; width >>= 1u) {
        if lane < width {
            for (var r = 0u; r < rows; r++) {
                partial[r * 256u + lid] += partial[r * 256u + lid + width];
            }
        }
        workgroupBarrier();
    }
    if lane == 0u {
        for (var r = 0u; r < rows; r++) { store_output(r, col, partial[r * 256u + lid]); }
    }
}

@compute @workgroup_size(256)
fn matvec_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x % 64u;
    let col = wg.x * 4u + lid.x / 64u;
    let rows = min(params.m, SKINNY_ROWS);
    var sums: array<f32, 8>;
    if col < params.n {
        let w_base = col * params.k;
        for (var kk = lane; kk < params.k; kk += 64u) {
            let wv = load_w(w_base + kk);
            for (var r = 0u; r < rows; r++) {
                sums[r] = fma(load_a(params.a_offset + r * params.a_stride + kk), wv, sums[r]);
            }
        }
    }
    reduce_and_store(lid.x, lane, col, rows, sums);
}

@compute @workgroup_size(256)
fn matvec_vec4_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x % 64u;
    let col = wg.x * 4u + lid.x / 64u;
    let rows = min(params.m, SKINNY_ROWS);
    let k4 = params.k / 4u;
    var sums: array<f32, 8>;
    if col < params.n {
        for (var kq = lane; kq < k4; kq += 64u) {
            let wv = load_w4(col * k4 + kq);
            for (var r = 0u; r < rows; r++) {
                sums[r] += dot(a[(params.a_offset + r * params.a_stride) / 4u + kq], wv);
            }
        }
    }
    reduce_and_store(lid.x, lane, col, rows, sums);
}
