// dst row r = src row ids[r], copied as 32-bit words whatever the element encoding (f32,
// packed f16 or packed int8): selects the rows of an output layer for a shortlist.

struct GatherParams {
    rows: u32,
    words: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: GatherParams;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> src: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn gather_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.y;
    if gid.x >= params.words || row >= params.rows { return; }
    dst[row * params.words + gid.x] = src[ids[row] * params.words + gid.x];
}
