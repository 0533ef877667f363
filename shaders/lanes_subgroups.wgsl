// Max and sum across the 64 invocations of a workgroup with subgroup operations: each
// subgroup reduces in registers, then every lane combines the per-subgroup results in
// subgroup order. The subgroup size is the adapter's (4 to 128); subgroup_id places each
// subgroup's result, so nothing assumes how invocations map to subgroups.

const LANES: u32 = 64u;

struct Lane {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_invocation_id) in_subgroup: u32,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) subgroups: u32,
}

var<workgroup> subgroup_values: array<f32, 64>;

fn lanes_max(value: f32, ids: Lane) -> f32 {
    let best_here = subgroupMax(value);
    // Every invocation must have read the previous values before they are overwritten.
    workgroupBarrier();
    if ids.in_subgroup == 0u { subgroup_values[ids.subgroup] = best_here; }
    workgroupBarrier();
    var best = subgroup_values[0];
    for (var i = 1u; i < ids.subgroups; i++) { best = max(best, subgroup_values[i]); }
    return best;
}

fn lanes_sum(value: f32, ids: Lane) -> f32 {
    let total_here = subgroupAdd(value);
    workgroupBarrier();
    if ids.in_subgroup == 0u { subgroup_values[ids.subgroup] = total_here; }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < ids.subgroups; i++) { total += subgroup_values[i]; }
    return total;
}
