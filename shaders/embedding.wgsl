// Token embedding lookup with the absolute position embedding added in the same pass:
//   out[r, :] = table[ids[r], :] * scale + positions[first + r, :]
// where first = position_offset (+ the sequence's decode position for decoder steps). Learned tables (BART,
// mBART) and precomputed sinusoidal ones (Marian, M2M100) are both just tables here.
// The token table is read through a weights_*.wgsl reader composed before this file (f32,
// f16, or int8 with a scale per row; bindings 3 and 6), as the LM head that may share it
// is; position tables stay f32.
// Ids were validated against the vocabulary on the CPU or produced by argmax over it; the
// clamps only keep corrupted input from reading outside a table.

// A table kept in row blocks is read a block at a time: a pass over each token block writes
// the rows whose id it holds (without positions), then a pass over each position block adds
// the positions it holds. One block each (the usual case) is a single fused pass.

struct EmbeddingParams {
    rows: u32,
    dim: u32,
    vocab: u32,
    scale: f32,
    // Bit 0: add positions. Bit 1: positions continue after the sequence's cached tokens. Bit 2:
    // write token rows (else only add positions to what is there).
    flags: u32,
    position_offset: u32,
    position_rows: u32,
    // Rows of one sequence: a batch of sequences restarts positions for each.
    rows_per_sequence: u32,
    // The rows of the whole table that `table` holds, and of the position table `positions`.
    table_first: u32,
    table_rows: u32,
    position_first: u32,
    position_block_rows: u32,
}

@group(0) @binding(0) var<storage, read> params: EmbeddingParams;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(4) var<storage, read> positions: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const FLAG_POSITIONS: u32 = 1u;
const FLAG_STEP: u32 = 2u;
const FLAG_TOKENS: u32 = 4u;

@compute @workgroup_size(256)
fn embedding_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x;
    let id = min(ids[row], params.vocab - 1u);
    var position = params.position_offset + row % params.rows_per_sequence;
    if (params.flags & FLAG_STEP) != 0u { position += sequence_pos(row / params.rows_per_sequence); }
    position = min(position, params.position_rows - 1u);
    let with_positions = (params.flags & FLAG_POSITIONS) != 0u;
    let tokens = (params.flags & FLAG_TOKENS) != 0u;
    // Whole workgroups leave together: no barrier follows.
    if tokens && (id < params.table_first || id - params.table_first >= params.table_rows) { return; }
    if with_positions && (position < params.position_first || position - params.position_first >= params.position_block_rows) { return; }
    let token = id - params.table_first;
    let token_row = token * params.dim;
    let position_row = (position - params.position_first) * params.dim;
    let scale = weight_scale(token) * params.scale;
    for (var c = lid.x; c < params.dim; c += 256u) {
        if tokens {
            var v = load_w(token_row + c) * scale;
            if with_positions { v += positions[position_row + c]; }
            out[row * params.dim + c] = v;
        } else {
            out[row * params.dim + c] += positions[position_row + c];
        }
    }
}
