// Row normalisation: LayerNorm (mean and variance, weight and bias) and T5's RMSNorm
// (no mean subtraction, no bias), from x into y, or in place in y, or added to y (a
// normalised sublayer output joining the residual stream, as Gemma's post-sublayer norms).
// `norm` holds the weight, then LayerNorm's bias. WebGPU forbids binding
// one buffer to two writable bindings, so in place the input is read from y itself (x is
// then a placeholder); each invocation reads only the elements it later writes.

struct NormParams {
    rows: u32,
    cols: u32,
    eps: f32,
    in_place: u32,
    accumulate: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> params: NormParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> norm: array<f32>;

fn load(i: u32) -> f32 {
    if params.in_place != 0u { return y[i]; }
    return x[i];
}

fn store(i: u32, value: f32) {
    if params.accumulate != 0u {
        y[i] = y[i] + value;
    } else {
        y[i] = value;
    }
}

@compute @workgroup_size(256)
fn layer_norm_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let base = wg.x * params.cols;
    let lane = lid.x;
    let n = f32(params.cols);
    var local_sum = 0.0;
    for (var c = lane; c < params.cols; c += RED_WG) { local_sum += load(base + c); }
    let mean = reduce_sum(local_sum, lane) / n;
    // Two passes (mean, then squared deviations) as torch does: no cancellation for large means.
    var local_sq = 0.0;
    for (var c = lane; c < params.cols; c += RED_WG) {
        let d = load(base + c) - mean;
        local_sq += d * d;
    }
    let inv_std = inverseSqrt(reduce_sum(local_sq, lane) / n + params.eps);
    for (var c = lane; c < params.cols; c += RED_WG) {
        store(base + c, (load(base + c) - mean) * inv_std * norm[c] + norm[params.cols + c]);
    }
}

@compute @workgroup_size(256)
fn rms_norm_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let base = wg.x * params.cols;
    let lane = lid.x;
    var local_sq = 0.0;
    for (var c = lane; c < params.cols; c += RED_WG) {
        let v = load(base + c);
        local_sq += v * v;
    }
    let inv_rms = inverseSqrt(reduce_sum(local_sq, lane) / f32(params.cols) + params.eps);
    for (var c = lane; c < params.cols; c += RED_WG) {
        store(base + c, norm[c] * (load(base + c) * inv_rms));
    }
}
