// Numerically stable softmax over each row, in place: exp(x - max) / sum.

struct SoftmaxParams {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> params: SoftmaxParams;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn softmax_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let base = wg.x * params.cols;
    let lane = lid.x;
    var local_max = -3.4e38;
    for (var c = lane; c < params.cols; c += RED_WG) { local_max = max(local_max, x[base + c]); }
    let row_max = reduce_max(local_max, lane);
    var local_sum = 0.0;
    for (var c = lane; c < params.cols; c += RED_WG) { local_sum += exp(x[base + c] - row_max); }
    let total = reduce_sum(local_sum, lane);
    let inv = 1.0 / total;
    for (var c = lane; c < params.cols; c += RED_WG) { x[base + c] = exp(x[base + c] - row_max) * inv; }
}
