// The Simpler Simple Recurrent Unit of Marian's "tiny" decoders, element-wise over one step:
//   f = sigmoid(x·Wf + bf),  c = f * c_prev + (1 - f) * (x·W),  h = relu(c) + x
// `gates` holds the two products side by side ([rows, 2 * dim]: x·W, then x·Wf + bf), so one
// matmul computes both. Each invocation walks its sequence's tokens in order, because c
// depends on the previous token; the state starts from zero at decode position 0.

struct SsruParams {
    sequences: u32,
    tokens: u32,
    dim: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: SsruParams;
@group(0) @binding(2) var<storage, read> gates: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> hidden: array<f32>;

@compute @workgroup_size(64)
fn ssru_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let dim = params.dim;
    if gid.x >= params.sequences * dim { return; }
    let sequence = gid.x / dim;
    let j = gid.x % dim;
    var c = select(state[gid.x], 0.0, sequence_pos(sequence) == 0u);
    for (var t = 0u; t < params.tokens; t++) {
        let row = sequence * params.tokens + t;
        let forget = 1.0 / (1.0 + exp(-gates[row * 2u * dim + dim + j]));
        c = forget * c + (1.0 - forget) * gates[row * 2u * dim + j];
        let i = row * dim + j;
        hidden[i] = max(c, 0.0) + hidden[i];
    }
    state[gid.x] = c;
}
