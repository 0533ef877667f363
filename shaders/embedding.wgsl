// Token embedding lookup: out[r, :] = table[ids[r], :] * scale.
// Ids were validated against the vocabulary on the CPU or produced by argmax over it;
// the clamp only keeps a corrupted id from reading outside the table.

struct EmbeddingParams {
    rows: u32,
    dim: u32,
    vocab: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: EmbeddingParams;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn embedding_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x;
    let id = min(ids[row], params.vocab - 1u);
    for (var c = lid.x; c < params.dim; c += 256u) {
        out[row * params.dim + c] = table[id * params.dim + c] * params.scale;
    }
}
