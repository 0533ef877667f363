const LANES: u32 = 64u;

struct Lane {
    @builtin(local_invocation_index) index: u32,
}

var<workgroup> lane_values: array<f32, 64>;

fn lanes_max(value: f32, ids: Lane) -> f32 {
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
