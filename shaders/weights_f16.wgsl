// Weights of the matmul kernels stored as f16, two per u32 (element i in the low half of
// word i / 2 when i is even). unpack2x16float needs no shader-f16 feature, so this works on
// every adapter; arithmetic stays f32.
@group(0) @binding(3) var<storage, read> w: array<u32>;

fn load_w(i: u32) -> f32 {
    let pair = unpack2x16float(w[i >> 1u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
}
