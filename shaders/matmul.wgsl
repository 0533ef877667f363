// out[m, n] (+)= alpha * act(sum_k a[m, k] * w[n, k] + bias[n])
// The x · Wᵀ form of a Linear layer whose weight is stored [out_features, in_features].
//
// Workgroup tiling: a 64x64 output tile per workgroup, walking K in slices of 16 that are
// staged in workgroup memory. Register tiling: each of the 16x16 invocations accumulates a
// 4x4 block in registers, so every value loaded from workgroup memory feeds 4 multiply-adds.

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
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const FLAG_BIAS: u32 = 1u;
const FLAG_ACCUMULATE: u32 = 2u;

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS: u32 = 256u;

// Stored k-major so that the inner loop reads consecutive m (or n) values.
var<workgroup> a_tile: array<f32, 1024>; // TILE_K * TILE_M
var<workgroup> w_tile: array<f32, 1024>; // TILE_K * TILE_N

fn store_output(row: u32, col: u32, value: f32) {
    if row >= params.m || col >= params.n { return; }
    var v = value;
    if (params.flags & FLAG_BIAS) != 0u { v = v + bias[col]; }
    v = params.alpha * activate(v, params.activation);
    let idx = params.out_offset + row * params.out_stride + col;
    if (params.flags & FLAG_ACCUMULATE) != 0u { v = v + out[idx]; }
    out[idx] = v;
}

@compute @workgroup_size(16, 16)
fn matmul_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let row0 = wg.y * TILE_M;
    let col0 = wg.x * TILE_N;

    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; }
    }

    let k_tiles = (params.k + TILE_K - 1u) / TILE_K;
    for (var t = 0u; t < k_tiles; t++) {
        let k0 = t * TILE_K;
        // 1024 elements per tile, 4 per invocation; consecutive invocations read consecutive k.
        for (var r = 0u; r < 4u; r++) {
            let e = tid + r * THREADS;
            let tile_row = e / TILE_K;
            let kk = e % TILE_K;
            let kg = k0 + kk;
            let ar = row0 + tile_row;
            var av = 0.0;
            if ar < params.m && kg < params.k { av = a[params.a_offset + ar * params.a_stride + kg]; }
            a_tile[kk * TILE_M + tile_row] = av;
            let wr = col0 + tile_row;
            var wv = 0.0;
            if wr < params.n && kg < params.k { wv = load_w(wr * params.k + kg); }
            w_tile[kk * TILE_N + tile_row] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            var av: array<f32, 4>;
            var wv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = a_tile[kk * TILE_M + lid.y + 16u * i];
                wv[i] = w_tile[kk * TILE_N + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(av[i], wv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store_output(row0 + lid.y + 16u * i, col0 + lid.x + 16u * j, acc[i][j]);
        }
    }
}

// Skinny form for decode with at most 8 rows (a batch or the beams of one step): one
// workgroup per 4 output columns, 64 invocations per column reading the weight row once with
// unit stride for every input row, then reducing in workgroup memory. The tiled kernel would
// leave most rows of its 64-row tile idle and read the weights the same number of times.
const SKINNY_ROWS: u32 = 8u;
var<workgroup> partial: array<f32, 2048>; // SKINNY_ROWS * 256

@compute @workgroup_size(256)
fn matvec_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x % 64u;
    let slot = lid.x / 64u;
    let col = wg.x * 4u + slot;
    let rows = min(params.m, SKINNY_ROWS);
    var sums: array<f32, 8>;
    for (var r = 0u; r < SKINNY_ROWS; r++) { sums[r] = 0.0; }
    if col < params.n {
        let w_base = col * params.k;
        for (var kk = lane; kk < params.k; kk += 64u) {
            let wv = load_w(w_base + kk);
            for (var r = 0u; r < rows; r++) {
                sums[r] = fma(a[params.a_offset + r * params.a_stride + kk], wv, sums[r]);
            }
        }
    }
    for (var r = 0u; r < SKINNY_ROWS; r++) { partial[r * 256u + lid.x] = sums[r]; }
    workgroupBarrier();
    for (var width = 32u; width > 0u; width >>= 1u) {
        if lane < width {
            for (var r = 0u; r < rows; r++) {
                partial[r * 256u + lid.x] += partial[r * 256u + lid.x + width];
            }
        }
        workgroupBarrier();
    }
    if lane == 0u {
        for (var r = 0u; r < rows; r++) { store_output(r, col, partial[r * 256u + lid.x]); }
    }
}
