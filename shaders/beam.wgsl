// Beam search's scoring step on the GPU, as transformers 5 runs it: each beam's logits
// become log-probabilities (log-softmax), each beam's running score is added, and of the
// beams x vocabulary continuations of one input the `keep` best are written in order (the
// largest first, the lower flat index first on ties) as (score bits, beam * vocab + token).
// Only those leave the GPU; the CPU then finishes the step (generate/beam.rs). The best
// `keep` are those at or above a cut-off found by radix_cutoff.wgsl; the ones above it and
// then the ties at it in index order are gathered without atomics, and ranked. One
// workgroup per input.

struct BeamParams {
    inputs: u32,
    beams: u32,
    cols: u32,
    keep: u32,
    // The full vocabulary: candidates are numbered beam * vocab + token.
    vocab: u32,
    mapped: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> params: BeamParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> beam_scores: array<f32>;
@group(0) @binding(4) var<storage, read_write> candidates: array<u32>;
@group(0) @binding(5) var<storage, read> vocabulary: array<u32>;

const MAX_BEAMS: u32 = 64u;
var<workgroup> log_sum: array<f32, MAX_BEAMS>;
var<workgroup> running: array<f32, MAX_BEAMS>;
// Per lane, then (lane 0's scan) the lane's first slot: entries above the cut, and at it.
var<workgroup> above_first: array<u32, 256>;
var<workgroup> tie_first: array<u32, 256>;
var<workgroup> slot_value: array<f32, 256>;
var<workgroup> slot_index: array<u32, 256>;
// The input's first logit.
var<private> item_base: u32;

// Continuation c (beam c / cols, column c % cols) scored as transformers scores it:
// log-probability, then plus the beam's score.
fn cutoff_value(c: u32) -> f32 {
    let beam = c / params.cols;
    return (x[item_base + c] - log_sum[beam]) + running[beam];
}

fn flat_index(c: u32) -> u32 {
    let beam = c / params.cols;
    let column = c % params.cols;
    let token = select(column, vocabulary[column], params.mapped != 0u);
    return beam * params.vocab + token;
}

@compute @workgroup_size(256)
fn beam_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let item = wg.x;
    let lane = lid.x;
    let cols = params.cols;
    let n = params.beams * cols;
    item_base = item * n;
    for (var b = 0u; b < params.beams; b++) {
        let row = item_base + b * cols;
        var local_best = -3.4e38;
        for (var c = lane; c < cols; c += RED_WG) { local_best = max(local_best, x[row + c]); }
        let best = reduce_max(local_best, lane);
        var local_sum = 0.0;
        for (var c = lane; c < cols; c += RED_WG) { local_sum += exp(x[row + c] - best); }
        let total = reduce_sum(local_sum, lane);
        if lane == 0u {
            // A row with nothing possible stays -inf, as the CPU's log-softmax leaves it.
            log_sum[b] = select(best + log(total), 0.0, best <= -3.4e38);
            running[b] = beam_scores[item * params.beams + b];
        }
    }
    workgroupBarrier();
    // keep <= min(n, 256), checked by the op.
    let keep = params.keep;
    let cut = cutoff(n, lane, 0u, false, 0.0, f32(keep), 0.0);

    // Each lane takes a contiguous share of the entries, so that lane order is index order.
    let share = (n + RED_WG - 1u) / RED_WG;
    let first = min(lane * share, n);
    let last = min(first + share, n);
    var above = 0u;
    var ties = 0u;
    for (var c = first; c < last; c++) {
        let key = order_key(cutoff_value(c));
        above += u32(key > cut);
        ties += u32(key == cut);
    }
    above_first[lane] = above;
    tie_first[lane] = ties;
    workgroupBarrier();
    if lane == 0u {
        var above_total = 0u;
        var tie_total = 0u;
        for (var l = 0u; l < RED_WG; l++) {
            let a = above_first[l];
            let t = tie_first[l];
            above_first[l] = above_total;
            tie_first[l] = tie_total;
            above_total += a;
            tie_total += t;
        }
        // Ties fill the slots after every entry above the cut (fewer than keep).
        for (var l = 0u; l < RED_WG; l++) { tie_first[l] += above_total; }
    }
    workgroupBarrier();
    var above_slot = above_first[lane];
    var tie_slot = tie_first[lane];
    for (var c = first; c < last; c++) {
        let v = cutoff_value(c);
        let key = order_key(v);
        if key > cut {
            slot_value[above_slot] = v;
            slot_index[above_slot] = c;
            above_slot++;
        } else if key == cut {
            if tie_slot < keep {
                slot_value[tie_slot] = v;
                slot_index[tie_slot] = c;
            }
            tie_slot++;
        }
    }
    workgroupBarrier();
    // Rank the kept entries: largest first, the lower index first on ties (as total_cmp).
    if lane < keep {
        let key = order_key(slot_value[lane]);
        let index = slot_index[lane];
        var rank = 0u;
        for (var s = 0u; s < keep; s++) {
            let other = order_key(slot_value[s]);
            rank += u32(other > key || (other == key && slot_index[s] < index));
        }
        let out = 2u * (item * params.keep + rank);
        candidates[out] = bitcast<u32>(slot_value[lane]);
        candidates[out + 1u] = flat_index(index);
    }
}
