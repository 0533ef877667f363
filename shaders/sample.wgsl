// Draws each row's next token as transformers' sampling does: scores divided by the
// temperature, cut to the top-k, then to the top-p nucleus, one token drawn from the softmax
// of what is left. The draw is Gumbel-max: of the kept columns, the one whose score plus
// Gumbel noise is largest wins, the noise a hash of (seed, row, position, token id). So the
// draw needs no sort, no prefix sum and no random state between steps, and a seed gives the
// same tokens on every adapter and on the CPU (src/generate/sampling.rs hashes the same way).
//
// The cut-offs come from the radix descent of radix_cutoff.wgsl, by count (top-k) and by
// probability mass (top-p): no sort. One workgroup per row.

struct SampleParams {
    rows: u32,
    cols: u32,
    mapped: u32,
    // 0: no top-k cut.
    top_k: u32,
    temperature: f32,
    // 1: no top-p cut.
    top_p: f32,
    seed_lo: u32,
    seed_hi: u32,
}

@group(0) @binding(0) var<storage, read> params: SampleParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<storage, read> vocabulary: array<u32>;

// The first value of this workgroup's row.
var<private> row_base: u32;

// The hash lowbias32 (Chris Wellons): a bijection of u32 with good avalanche.
fn mix(value: u32) -> u32 {
    var h = value;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

// Gumbel noise for one token of a row whose stream is `row_noise`.
fn gumbel(row_noise: u32, token: u32) -> f32 {
    let bits = mix(mix(row_noise ^ token) ^ row_noise);
    // 24 bits, centred, so 0 < u < 1.
    let u = (f32(bits >> 8u) + 0.5) / 16777216.0;
    return -log(-log(u));
}

// The row's scores as the cut-offs and the draw see them.
fn cutoff_value(c: u32) -> f32 {
    return x[row_base + c] / params.temperature;
}

fn token_of(column: u32) -> u32 {
    if params.mapped != 0u { return vocabulary[column]; }
    return column;
}

@compute @workgroup_size(256)
fn sample_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x;
    row_base = row * params.cols;
    let lane = lid.x;
    var cut = 0u;
    if params.top_k != 0u && params.top_k < params.cols {
        cut = cutoff(params.cols, lane, cut, false, 0.0, f32(params.top_k), 0.0);
    }
    if params.top_p < 1.0 {
        var local_best = -3.4e38;
        for (var c = lane; c < params.cols; c += RED_WG) { local_best = max(local_best, cutoff_value(c)); }
        let best = reduce_max(local_best, lane);
        cut = cutoff(params.cols, lane, cut, true, best, 0.0, params.top_p);
    }
    let row_noise = mix(mix(mix(mix(params.seed_lo) ^ params.seed_hi) ^ row) ^ sequence_pos(row));
    var best = -3.4e38;
    var best_idx = NO_INDEX;
    for (var c = lane; c < params.cols; c += RED_WG) {
        let v = cutoff_value(c);
        if order_key(v) < cut { continue; }
        let noisy = v + gumbel(row_noise, token_of(c));
        if noisy > best || (best_idx == NO_INDEX && noisy == noisy) { best = noisy; best_idx = c; }
    }
    let found = reduce_argmax(best, best_idx, lane);
    if lane == 0u {
        ids[row] = token_of(select(found, 0u, found == NO_INDEX));
    }
}
