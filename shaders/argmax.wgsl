// Index of the largest value in each row; the lowest index wins a tie, as torch.argmax does.
// Only these ids leave the GPU during generation. When the logits cover a subset of the
// vocabulary (a shortlist), `vocabulary` maps a column to its token id.

struct ArgmaxParams {
    rows: u32,
    cols: u32,
    mapped: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: ArgmaxParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<storage, read> vocabulary: array<u32>;

@compute @workgroup_size(256)
fn argmax_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let base = wg.x * params.cols;
    let lane = lid.x;
    var best = -3.4e38;
    var best_idx = NO_INDEX;
    for (var c = lane; c < params.cols; c += RED_WG) {
        let v = x[base + c];
        // NaN never wins; strict > keeps the first (lowest) index per invocation.
        if v > best || (best_idx == NO_INDEX && v == v) { best = v; best_idx = c; }
    }
    let found = reduce_argmax(best, best_idx, lane);
    if lane == 0u {
        let column = select(found, 0u, found == NO_INDEX);
        ids[wg.x] = select(column, vocabulary[column], params.mapped != 0u);
    }
}

// The second stage after an output layer's fused first stage (FLAG_ARGMAX in matmul.wgsl):
// x holds each row's `cols` partial bests as (value, column as f32, -1 for none), in column
// order, and the best of them wins, the lowest column on ties.
@compute @workgroup_size(256)
fn argmax_partials_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let base = 2u * wg.x * params.cols;
    let lane = lid.x;
    var best = -3.4e38;
    var best_idx = NO_INDEX;
    for (var p = lane; p < params.cols; p += RED_WG) {
        let v = x[base + 2u * p];
        let column = x[base + 2u * p + 1u];
        if column >= 0.0 && (v > best || best_idx == NO_INDEX) { best = v; best_idx = u32(column); }
    }
    let found = reduce_argmax(best, best_idx, lane);
    if lane == 0u {
        let column = select(found, 0u, found == NO_INDEX);
        ids[wg.x] = select(column, vocabulary[column], params.mapped != 0u);
    }
}
