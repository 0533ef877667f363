// Bindings every kernel shares: its own parameters, and the decode position that changes per step.
// The step position lives in its own small buffer so that a recorded decode step can be replayed
// at every position without rebuilding bind groups.
struct Step {
    // Number of decoder tokens already in the self-attention cache.
    pos: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(1) var<uniform> step: Step;
