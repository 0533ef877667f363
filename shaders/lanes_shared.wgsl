// Max and sum across the 64 invocations of a workgroup, through workgroup memory: the
// fallback of lanes_subgroups.wgsl on adapters without subgroup operations (browsers, and
// native adapters that lack them). A tree of 6 halving steps: on lavapipe it measured up to
// 2x faster than every lane reading all 64 values (BENCHMARKS.md). Its fixed order gives the
// same sum on every run.

const LANES: u32 = 64u;

struct Lane {
    @builtin(local_invocation_index) index: u32,
}

var<workgroup> lane_values: array<f32, 64>;

fn lanes_max(value: f32, ids: Lane) -> f32 {
    // Every invocation must have read the previous result before it is overwritten.
    workgroupBarrier();
    lane_values[ids.index] = value;
    workgroupBarrier();
    for (var width = LANES / 2u; width > 0u; width >>= 1u) {
        if ids.index < width { lane_values[ids.index] = max(lane_values[ids.index], lane_values[ids.index + width]); }
        workgroupBarrier();
    }
    return lane_values[0];
}

fn lanes_sum(value: f32, ids: Lane) -> f32 {
    workgroupBarrier();
    lane_values[ids.index] = value;
    workgroupBarrier();
    for (var width = LANES / 2u; width > 0u; width >>= 1u) {
        if ids.index < width { lane_values[ids.index] += lane_values[ids.index + width]; }
        workgroupBarrier();
    }
    return lane_values[0];
}
