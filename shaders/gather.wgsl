// dst row r = src row ids[r], copied as 32-bit words whatever the element encoding (f32,
// packed f16 or packed int8): selects the rows of an output layer for a shortlist. A table
// kept in row blocks is gathered a block at a time: `src` holds rows first..first+block_rows,
// and only the ids among them are copied.

struct GatherParams {
    rows: u32,
    words: u32,
    first: u32,
    block_rows: u32,
}

@group(0) @binding(0) var<storage, read> params: GatherParams;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> src: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn gather_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.y;
    if gid.x >= params.words || row >= params.rows { return; }
    let id = ids[row];
    if id < params.first || id - params.first >= params.block_rows { return; }
    dst[row * params.words + gid.x] = src[(id - params.first) * params.words + gid.x];
}
