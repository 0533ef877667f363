// Appends the keys and values of this step's decoder tokens to the self-attention cache,
// at the rows that follow the `step.pos` tokens already cached. The cache is preallocated
// to the maximum length, so appending is an in-place write.

struct AppendParams {
    rows: u32,
    width: u32,
    src_offset: u32,
    src_stride: u32,
    dst_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: AppendParams;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> cache: array<f32>;

@compute @workgroup_size(256)
fn append_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x;
    for (var c = lid.x; c < params.width; c += 256u) {
        cache[(step.pos + row) * params.dst_stride + c] = src[params.src_offset + row * params.src_stride + c];
    }
}
