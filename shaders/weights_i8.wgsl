// Weights of the matmul kernels stored as int8, four per u32 (element i in byte i % 4 of
// word i / 4), with one f32 scale per weight row (output column) applied to the finished
// dot product: the inner loop multiplies exact small integers and never dequantises.
@group(0) @binding(3) var<storage, read> w: array<u32>;
@group(0) @binding(6) var<storage, read> w_scales: array<f32>;

fn load_w(i: u32) -> f32 {
    let shift = 24u - 8u * (i & 3u);
    return f32((bitcast<i32>(w[i >> 2u]) << shift) >> 24u);
}

fn load_w4(q: u32) -> vec4<f32> {
    // Shifting left then arithmetically right sign-extends each byte.
    let word = vec4(bitcast<i32>(w[q]));
    return vec4<f32>((word << vec4(24u, 16u, 8u, 0u)) >> vec4(24u));
}

fn weight_scale(col: u32) -> f32 {
    return w_scales[col];
}
