// Index of the largest value in each row; the lowest index wins a tie, as torch.argmax does.
// Only these ids leave the GPU during generation. When the logits cover a subset of the
// vocabulary (a shortlist), `vocabulary` maps a column to its token id.

struct ArgmaxParams {
    rows: u32,
    cols: u32,
    mapped: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: ArgmaxParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<storage, read> vocabulary: array<u32>;

@compute @workgroup_size(256)
fn argmax_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let base = wg.x * params.cols;
    let lane = lid.x;
    var best = -3.4e38;
    var best_idx = 0xffffffffu;
    for (var c = lane; c < params.cols; c += RED_WG) {
        let v = x[base + c];
        // NaN never wins; strict > keeps the first (lowest) index per invocation.
        if v > best || (best_idx == 0xffffffffu && v == v) { best = v; best_idx = c; }
    }
    red_f32[lane] = best;
    red_u32[lane] = best_idx;
    workgroupBarrier();
    for (var width = RED_WG / 2u; width > 0u; width >>= 1u) {
        if lane < width {
            let ov = red_f32[lane + width];
            let oi = red_u32[lane + width];
            let mine = red_f32[lane];
            let mi = red_u32[lane];
            if oi != 0xffffffffu && (mi == 0xffffffffu || ov > mine || (ov == mine && oi < mi)) {
                red_f32[lane] = ov;
                red_u32[lane] = oi;
            }
        }
        workgroupBarrier();
    }
    if lane == 0u {
        let column = select(red_u32[0], 0u, red_u32[0] == 0xffffffffu);
        ids[wg.x] = select(column, vocabulary[column], params.mapped != 0u);
    }
}
