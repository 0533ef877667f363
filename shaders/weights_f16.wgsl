// Weights of the matmul kernels stored as f16, two per u32 (element i in the low half of
// word i / 2 when i is even), bound as pairs of words so that one load brings 4 weights.
// unpack2x16float needs no shader-f16 feature, so this works on every adapter; arithmetic
// stays f32.
@group(0) @binding(3) var<storage, read> w: array<vec2<u32>>;

// Row scales are int8's (weights_i8.wgsl); declared here unused so that every reader's
// kernels bind the same slots.
@group(0) @binding(6) var<storage, read> w_scales: array<f32>;

fn load_w(i: u32) -> f32 {
    let words = w[i >> 2u];
    let pair = unpack2x16float(select(words.x, words.y, (i & 2u) != 0u));
    return select(pair.x, pair.y, (i & 1u) == 1u);
}

fn load_w4(q: u32) -> vec4<f32> {
    let words = w[q];
    return vec4(unpack2x16float(words.x), unpack2x16float(words.y));
}

fn weight_scale(col: u32) -> f32 {
    return 1.0;
}
