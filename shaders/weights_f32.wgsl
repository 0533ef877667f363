// Weights of the matmul kernels stored as f32, bound as vec4 (see matmul.wgsl).
@group(0) @binding(3) var<storage, read> w: array<vec4<f32>>;

fn load_w(i: u32) -> f32 {
    return w[i >> 2u][i & 3u];
}

fn load_w4(q: u32) -> vec4<f32> {
    return w[q];
}

fn weight_scale(col: u32) -> f32 {
    return 1.0;
}
