// Element-wise kernels: activation in place, the gated feed-forward product, residual add.

struct ElementwiseParams {
    // Elements (or rows for `gated`).
    count: u32,
    // Columns of the output for `gated`.
    width: u32,
    activation: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: ElementwiseParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WG;
}

// y = act(x)
@compute @workgroup_size(256)
fn activation_main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count { return; }
    y[i] = activate(x[i], params.activation);
}

// T5 v1.1 gated feed-forward: x holds [rows, 2 * width] with the gate projection (wi_0) in the
// first half of each row and the linear one (wi_1) in the second; y = act(gate) * linear.
@compute @workgroup_size(256)
fn gated_main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count * params.width { return; }
    let row = i / params.width;
    let col = i % params.width;
    let base = row * 2u * params.width;
    y[i] = activate(x[base + col], params.activation) * x[base + params.width + col];
}

// y += x (the residual stream accumulates in place)
@compute @workgroup_size(256)
fn add_main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count { return; }
    y[i] = y[i] + x[i];
}
