// Draws each row's next token as transformers' sampling does: scores divided by the
// temperature, cut to the top-k, then to the top-p nucleus, one token drawn from the softmax
// of what is left. The draw is Gumbel-max: of the kept columns, the one whose score plus
// Gumbel noise is largest wins, the noise a hash of (seed, row, position, token id). So the
// draw needs no sort, no prefix sum and no random state between steps, and a seed gives the
// same tokens on every adapter and on the CPU (src/generate/sampling.rs hashes the same way).
//
// The cut-offs come from a radix descent over the scores' order-preserving bit patterns, 4
// bits a level: each level sums, per digit, the count (top-k) or probability mass (top-p) of
// the columns whose higher digits match those chosen so far, over a fixed tree, so the
// result never depends on scheduling. One workgroup per row.

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

@group(0) @binding(0) var<uniform> params: SampleParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<storage, read> vocabulary: array<u32>;

const DIGITS: u32 = 16u;
const ROUNDS: u32 = 8u;
// The upper half of the lanes' digit sums at one level of the tree (128 lanes x 16 digits).
var<workgroup> handed_down: array<f32, 2048>;
// Lane 0's choice after a level: the key prefix, and 1 when everything is kept.
var<workgroup> decision: vec2<u32>;

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

// Unsigned integers in the order of the floats: negatives have every bit flipped, the
// others only the sign bit.
fn order_key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn score(base: u32, c: u32) -> f32 {
    return x[base + c] / params.temperature;
}

fn token_of(column: u32) -> u32 {
    if params.mapped != 0u { return vocabulary[column]; }
    return column;
}

// The largest key K such that the columns with keys >= K (and >= `floor`) weigh at least a
// goal: `count` columns, or with `by_mass` the top_p share of the mass of all columns at or
// above `floor` (weights exp(score - best)); `floor` when even all of them weigh less.
fn cutoff(base: u32, lane: u32, floor: u32, by_mass: bool, best: f32, count: f32) -> u32 {
    var prefix = 0u;
    var sums: array<f32, 16>;
    // Lane 0's running weight of the digits above the chosen ones, and the goal.
    var above = 0.0;
    var goal = count;
    for (var level = 0u; level < ROUNDS; level++) {
        let shift = 28u - 4u * level;
        // The bits of the digits already chosen (none in the first level).
        let fixed = select(0xffffffffu << ((shift + 4u) & 31u), 0u, level == 0u);
        for (var d = 0u; d < DIGITS; d++) { sums[d] = 0.0; }
        for (var c = lane; c < params.cols; c += RED_WG) {
            let v = score(base, c);
            let key = order_key(v);
            if key < floor || (key & fixed) != prefix { continue; }
            sums[(key >> shift) & 15u] += select(1.0, exp(v - best), by_mass);
        }
        // A tree over the lanes: at each level the upper half hands its sums down.
        for (var half = RED_WG / 2u; half > 0u; half >>= 1u) {
            if lane >= half && lane < 2u * half {
                for (var d = 0u; d < DIGITS; d++) { handed_down[(lane - half) * DIGITS + d] = sums[d]; }
            }
            workgroupBarrier();
            if lane < half {
                for (var d = 0u; d < DIGITS; d++) { sums[d] += handed_down[lane * DIGITS + d]; }
            }
            workgroupBarrier();
        }
        if lane == 0u {
            if level == 0u && by_mass {
                var total = 0.0;
                for (var d = 0u; d < DIGITS; d++) { total += sums[d]; }
                goal = params.top_p * total;
            }
            var chosen = DIGITS;
            var lowest = DIGITS;
            for (var d = DIGITS; d > 0u; d--) {
                let weight = sums[d - 1u];
                if weight > 0.0 { lowest = d - 1u; }
                if chosen == DIGITS {
                    if above + weight >= goal { chosen = d - 1u; } else { above += weight; }
                }
            }
            // Past the first level the chosen bin's digits hold the goal; only rounding of
            // their separate sums can miss it, and then the whole bin is kept.
            if chosen == DIGITS && level > 0u { chosen = select(lowest, 0u, lowest == DIGITS); }
            decision = vec2<u32>(prefix | (chosen << shift), u32(chosen == DIGITS));
        }
        let d = workgroupUniformLoad(&decision);
        if d.y != 0u { return floor; }
        prefix = d.x;
    }
    return prefix;
}

@compute @workgroup_size(256)
fn sample_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x;
    let base = row * params.cols;
    let lane = lid.x;
    var cut = 0u;
    if params.top_k != 0u && params.top_k < params.cols {
        cut = cutoff(base, lane, cut, false, 0.0, f32(params.top_k));
    }
    if params.top_p < 1.0 {
        var local_best = -3.4e38;
        for (var c = lane; c < params.cols; c += RED_WG) { local_best = max(local_best, score(base, c)); }
        let best = reduce_max(local_best, lane);
        cut = cutoff(base, lane, cut, true, best, 0.0);
    }
    let row_noise = mix(mix(mix(mix(params.seed_lo) ^ params.seed_hi) ^ row) ^ step.pos);
    var best = -3.4e38;
    var best_idx = NO_INDEX;
    for (var c = lane; c < params.cols; c += RED_WG) {
        let v = score(base, c);
        if order_key(v) < cut { continue; }
        let noisy = v + gumbel(row_noise, token_of(c));
        if noisy > best || (best_idx == NO_INDEX && noisy == noisy) { best = noisy; best_idx = c; }
    }
    let found = reduce_argmax(best, best_idx, lane);
    if lane == 0u {
        ids[row] = token_of(select(found, 0u, found == NO_INDEX));
    }
}
