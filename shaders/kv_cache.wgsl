// Appends the keys and values of this step's decoder tokens to the self-attention cache,
// at the rows that follow the `step.pos` tokens already cached, for each sequence of a
// batch (sequence s owns rows s * capacity ..). The cache is preallocated, so appending is
// an in-place write; a cache of fewer rows than positions (a sliding window's) is a ring:
// position p goes to row p % capacity.

struct AppendParams {
    rows: u32,
    width: u32,
    src_offset: u32,
    src_stride: u32,
    dst_stride: u32,
    rows_per_sequence: u32,
    capacity: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: AppendParams;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> cache: array<f32>;

@compute @workgroup_size(256)
fn append_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x;
    let sequence = row / params.rows_per_sequence;
    let position = step.pos + row % params.rows_per_sequence;
    let dst_row = sequence * params.capacity + position % params.capacity;
    for (var c = lid.x; c < params.width; c += 256u) {
        cache[dst_row * params.dst_stride + c] = src[params.src_offset + row * params.src_stride + c];
    }
}
