// Merges the key splits of attention.wgsl: one workgroup per (query row, head, batch item)
// rescales each split's sum and output to the largest running max and normalises:
//   out = Σ_s acc_s · exp(m_s − m) / Σ_s l_s · exp(m_s − m),   m = max_s m_s.
// A split without keys has m_s = NEG_INF and l_s = 0, and adds nothing.

@group(0) @binding(0) var<storage, read> params: AttentionParams;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn attention_combine_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let row = wg.x;
    let head = wg.y;
    let batch = wg.z;
    let dh = params.head_dim;
    let first = partial_record(row, head, batch, 0u);
    let record_len = dh + 2u;
    var m = NEG_INF;
    for (var s = 0u; s < params.splits; s++) { m = max(m, partials[first + s * record_len]); }
    var total = 0.0;
    for (var s = 0u; s < params.splits; s++) {
        let r = first + s * record_len;
        total += partials[r + 1u] * exp(partials[r] - m);
    }
    let inv = select(1.0 / total, 0.0, total == 0.0);
    let out_base = batch * params.out_batch_stride + row * params.out_stride + head * dh;
    for (var d = lane; d < dh; d += 64u) {
        var sum = 0.0;
        for (var s = 0u; s < params.splits; s++) {
            let r = first + s * record_len;
            sum = fma(partials[r + 2u + d], exp(partials[r] - m), sum);
        }
        out[out_base + d] = sum * inv;
    }
}
