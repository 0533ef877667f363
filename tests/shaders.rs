//! Every WGSL module parses and validates with naga, and every entry point builds a
//! pipeline on the real device, so a shader error fails here and never in a user's run.

mod common;

use seq2seq_gpu::gpu::shaders::{Shader, all_kernels};

#[test]
fn every_shader_validates_with_naga() {
    for shader in Shader::ALL {
        let source = shader.source();
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{}: {}", shader.name(), e.emit_to_string(&source)));
        // unpack2x16float (packed f16 weights) is core WGSL; naga gates it behind this
        // capability for GL targets, and wgpu grants it on Vulkan, Metal, DX12 and WebGPU.
        // WGSL f16 is only used by the modules wgpu builds with the shader-f16 feature.
        let mut capabilities = naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
        if shader.needs_shader_f16() {
            capabilities |= naga::valid::Capabilities::SHADER_FLOAT16;
        }
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {}", shader.name(), e.emit_to_string(&source)));
    }
}

#[test]
fn every_kernel_builds_a_pipeline() {
    let gpu = common::gpu();
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    let kernels = all_kernels();
    assert!(kernels.iter().any(|k| k.shader.needs_shader_f16()));
    for kernel in kernels {
        if kernel.shader.needs_shader_f16() && !gpu.native_f16() {
            continue;
        }
        let params = [0u32; 64];
        let storage: Vec<wgpu::Buffer> = kernel
            .storage
            .iter()
            .map(|_| gpu.upload("probe", &[0u32; 4]).unwrap())
            .collect();
        let refs: Vec<&wgpu::Buffer> = storage.iter().collect();
        rec.dispatch(&kernel, &params, &refs, [1, 1, 1])
            .unwrap_or_else(|e| panic!("{}: {e}", kernel.entry));
    }
    rec.finish().expect("bind groups for every kernel");
    gpu.check().expect("no device error");
}
