// Appends the keys and values of this step's decoder tokens to the self-attention cache,
// at the rows that follow the `sequence_pos` tokens already cached, for each sequence of a
// batch (sequence s owns rows s * capacity ..). The cache is preallocated, so appending is
// an in-place write; a cache of fewer rows than positions (a sliding window's) is a ring:
// position p goes to row p % capacity. A paged cache (block_rows > 0) is one pool of blocks
// of block_rows rows: sequence s's position p goes to row b * block_rows + p % block_rows,
// b = table[s * table_stride + p / block_rows].

struct AppendParams {
    rows: u32,
    width: u32,
    src_offset: u32,
    src_stride: u32,
    dst_stride: u32,
    rows_per_sequence: u32,
    capacity: u32,
    block_rows: u32,
    table_stride: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: AppendParams;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> cache: array<f32>;
@group(0) @binding(4) var<storage, read> table: array<u32>;

@compute @workgroup_size(256)
fn append_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x;
    let sequence = row / params.rows_per_sequence;
    let position = sequence_pos(sequence) + row % params.rows_per_sequence;
    var dst_row = sequence * params.capacity + position % params.capacity;
    if params.block_rows != 0u {
        // A position past the table (an idle row) stays in the row's last block.
        let entry = min(position / params.block_rows, params.table_stride - 1u);
        let block = table[sequence * params.table_stride + entry];
        dst_row = block * params.block_rows + position % params.block_rows;
    }
    for (var c = lid.x; c < params.width; c += 256u) {
        cache[dst_row * params.dst_stride + c] = src[params.src_offset + row * params.src_stride + c];
    }
}
