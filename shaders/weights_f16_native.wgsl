// Weights of the matmul kernels stored as f16 (the same bytes as weights_f16.wgsl), read as
// WGSL f16 on adapters with shader-f16: no unpacking instructions. Arithmetic stays f32.
@group(0) @binding(3) var<storage, read> w: array<vec4<f16>>;

// Row scales are int8's (weights_i8.wgsl); declared here unused so that every reader's
// kernels bind the same slots.
@group(0) @binding(6) var<storage, read> w_scales: array<f32>;

fn load_w(i: u32) -> f32 {
    return f32(w[i >> 2u][i & 3u]);
}

fn load_w4(q: u32) -> vec4<f32> {
    return vec4<f32>(w[q]);
}

fn weight_scale(col: u32) -> f32 {
    return 1.0;
}
