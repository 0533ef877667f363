// Bindings every kernel shares: its own parameters, and the decode position that changes per step.
// The step position lives in its own small buffer so that a recorded decode step can be replayed
// at every position without rebuilding bind groups.
struct Step {
    // The decode step: tokens already in the self-attention cache of a sequence that began
    // at step 0.
    pos: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    // The step at which each sequence began, four to a vector (continuous batching: a row
    // takes a new input while the others go on). Zero for a batch that starts together.
    origins: array<vec4<u32>, 64>,
}

@group(0) @binding(1) var<uniform> step: Step;

const MAX_ORIGINS: u32 = 256u;

// Tokens already in the cache of sequence `s` at this step (sequences past MAX_ORIGINS
// began at step 0).
fn sequence_pos(s: u32) -> u32 {
    if s >= MAX_ORIGINS { return step.pos; }
    return step.pos - step.origins[s / 4u][s % 4u];
}
