// The radix descent that finds a cut-off among a workgroup's values: the largest key K
// (keys: order_key of the values, so K stands for a value) such that the values at or above
// K weigh at least a goal. 4 bits a level: each level sums, per digit, the count or the
// softmax mass of the values whose higher digits match those chosen so far, over a fixed
// tree of the lanes, so the result never depends on scheduling. Used by the top-k and top-p
// cut-offs of sampling and the top candidates of beam search; the module defines
// `cutoff_value(c)`, the value of entry c of the n it searches.

const DIGITS: u32 = 16u;
const LEVELS: u32 = 8u;
// The upper half of the lanes' digit sums at one level of the tree (128 lanes x 16 digits).
var<workgroup> handed_down: array<f32, 2048>;
// Lane 0's choice after a level: the key prefix, and whether the search goes on (0), keeps
// everything, or is done.
var<workgroup> decision: vec2<u32>;
const KEEP_ALL: u32 = 1u;
const DONE: u32 = 2u;

// Unsigned integers in the order of the floats (as Rust's total_cmp): negatives have every
// bit flipped, the others only the sign bit.
fn order_key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// The cut-off among entries 0..n with keys >= `floor`, whose weights are 1 (the goal is
// `count` entries) or with `by_mass` exp(value - best) (the goal is `share` of their
// total); `floor` when even all of them weigh less than the goal.
fn cutoff(n: u32, lane: u32, floor: u32, by_mass: bool, best: f32, count: f32, share: f32) -> u32 {
    var prefix = 0u;
    var sums: array<f32, 16>;
    // Lane 0's running weight of the digits above the chosen ones, and the goal.
    var above = 0.0;
    var goal = count;
    for (var level = 0u; level < LEVELS; level++) {
        let shift = 28u - 4u * level;
        // The bits of the digits already chosen (none in the first level). Written without
        // a shift that wraps, and the sums zeroed by hand: SwiftShader in Chromium cut every
        // value with `~(((1u << shift) << 4u) - 1u)` and the array declared in the loop.
        let fixed = select(0xffffffffu << ((shift + 4u) & 31u), 0u, level == 0u);
        for (var d = 0u; d < DIGITS; d++) { sums[d] = 0.0; }
        for (var c = lane; c < n; c += RED_WG) {
            let v = cutoff_value(c);
            let key = order_key(v);
            if key < floor || (key & fixed) != prefix { continue; }
            sums[(key >> shift) & 15u] += select(1.0, exp(v - best), by_mass);
        }
        // A tree over the lanes: at each level the upper half hands its sums down.
        for (var half = RED_WG / 2u; half > 0u; half >>= 1u) {
            if lane >= half && lane < 2u * half {
                for (var d = 0u; d < DIGITS; d++) { handed_down[(lane - half) * DIGITS + d] = sums[d]; }
            }
            workgroupBarrier();
            if lane < half {
                for (var d = 0u; d < DIGITS; d++) { sums[d] += handed_down[lane * DIGITS + d]; }
            }
            workgroupBarrier();
        }
        if lane == 0u {
            if level == 0u && by_mass {
                var total = 0.0;
                for (var d = 0u; d < DIGITS; d++) { total += sums[d]; }
                goal = share * total;
            }
            var chosen = DIGITS;
            var lowest = DIGITS;
            var whole_bin = false;
            for (var d = DIGITS; d > 0u; d--) {
                let weight = sums[d - 1u];
                if weight > 0.0 { lowest = d - 1u; }
                if chosen == DIGITS {
                    if above + weight >= goal {
                        chosen = d - 1u;
                        // Counts are exact: a bin that brings exactly the goal is kept whole,
                        // so its lowest key is as good a cut as any lower level would find.
                        whole_bin = !by_mass && above + weight == goal;
                    } else {
                        above += weight;
                    }
                }
            }
            // Past the first level the chosen bin's digits hold the goal; only rounding of
            // their separate sums can miss it, and then the whole bin is kept.
            if chosen == DIGITS && level > 0u { chosen = select(lowest, 0u, lowest == DIGITS); }
            let state = select(u32(chosen == DIGITS), DONE, whole_bin);
            decision = vec2<u32>(prefix | (chosen << shift), state);
        }
        let d = workgroupUniformLoad(&decision);
        if d.y == KEEP_ALL { return floor; }
        prefix = d.x;
        if d.y == DONE { return max(prefix, floor); }
    }
    return prefix;
}
