// Workgroup-wide reductions over 256 invocations, shared by the row kernels.
// workgroupUniformLoad makes the result uniform, so callers may branch on it before a barrier.
const RED_WG: u32 = 256u;
var<workgroup> red_f32: array<f32, 256>;
var<workgroup> red_u32: array<u32, 256>;

fn reduce_sum(value: f32, lane: u32) -> f32 {
    // Every invocation must have read the previous result before it is overwritten.
    workgroupBarrier();
    red_f32[lane] = value;
    workgroupBarrier();
    for (var width = RED_WG / 2u; width > 0u; width >>= 1u) {
        if lane < width { red_f32[lane] += red_f32[lane + width]; }
        workgroupBarrier();
    }
    let total = workgroupUniformLoad(&red_f32[0]);
    return total;
}

fn reduce_max(value: f32, lane: u32) -> f32 {
    // Every invocation must have read the previous result before it is overwritten.
    workgroupBarrier();
    red_f32[lane] = value;
    workgroupBarrier();
    for (var width = RED_WG / 2u; width > 0u; width >>= 1u) {
        if lane < width { red_f32[lane] = max(red_f32[lane], red_f32[lane + width]); }
        workgroupBarrier();
    }
    let best = workgroupUniformLoad(&red_f32[0]);
    return best;
}
