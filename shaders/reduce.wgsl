// Workgroup-wide reductions over 256 invocations, shared by the row kernels.
// workgroupUniformLoad makes the result uniform, so callers may branch on it before a barrier.
const RED_WG: u32 = 256u;
// An invocation's index before it has seen a value.
const NO_INDEX: u32 = 0xffffffffu;
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

// Where each invocation's best is `value` at `index` (NO_INDEX for none), the index of the
// workgroup's largest value, the lowest index on ties as torch.argmax; NO_INDEX if no
// invocation saw one.
fn reduce_argmax(value: f32, index: u32, lane: u32) -> u32 {
    // Every invocation must have read the previous result before it is overwritten.
    workgroupBarrier();
    red_f32[lane] = value;
    red_u32[lane] = index;
    workgroupBarrier();
    for (var width = RED_WG / 2u; width > 0u; width >>= 1u) {
        if lane < width {
            let ov = red_f32[lane + width];
            let oi = red_u32[lane + width];
            let mine = red_f32[lane];
            let mi = red_u32[lane];
            if oi != NO_INDEX && (mi == NO_INDEX || ov > mine || (ov == mine && oi < mi)) {
                red_f32[lane] = ov;
                red_u32[lane] = oi;
            }
        }
        workgroupBarrier();
    }
    let best = workgroupUniformLoad(&red_u32[0]);
    return best;
}
