// Token embedding lookup with the absolute position embedding added in the same pass:
//   out[r, :] = table[ids[r], :] * scale + positions[first + r, :]
// where first = position_offset (+ step.pos for decoder steps). Learned tables (BART,
// mBART) and precomputed sinusoidal ones (Marian, M2M100) are both just tables here.
// Ids were validated against the vocabulary on the CPU or produced by argmax over it; the
// clamps only keep corrupted input from reading outside a table.

struct EmbeddingParams {
    rows: u32,
    dim: u32,
    vocab: u32,
    scale: f32,
    // Bit 0: add positions. Bit 1: positions continue after step.pos cached tokens.
    flags: u32,
    position_offset: u32,
    position_rows: u32,
    // Rows of one sequence: a batch of sequences restarts positions for each.
    rows_per_sequence: u32,
}

@group(0) @binding(0) var<uniform> params: EmbeddingParams;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;
@group(0) @binding(4) var<storage, read> positions: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const FLAG_POSITIONS: u32 = 1u;
const FLAG_STEP: u32 = 2u;

@compute @workgroup_size(256)
fn embedding_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x;
    let id = min(ids[row], params.vocab - 1u);
    var position = params.position_offset + row % params.rows_per_sequence;
    if (params.flags & FLAG_STEP) != 0u { position += step.pos; }
    position = min(position, params.position_rows - 1u);
    let with_positions = (params.flags & FLAG_POSITIONS) != 0u;
    for (var c = lid.x; c < params.dim; c += 256u) {
        var v = table[id * params.dim + c] * params.scale;
        if with_positions { v += positions[position * params.dim + c]; }
        out[row * params.dim + c] = v;
    }
}
