//! Every kernel of the ops' table against its WGSL, read by naga: each module validates,
//! every entry point a module declares is in the table (so no kernel can be left out), every
//! `shaders/` file is part of a module, each kernel's storage bindings and uniform struct match
//! the WGSL's (names, offsets and size of every field), and every entry point builds a
//! pipeline on the real device, so a shader error fails here and never in a user's run.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use seq2seq_gpu::gpu::kernel::STEP_LAYOUT;
use seq2seq_gpu::gpu::{Access, Kernel, Module, ParamsBinding, UniformLayout};
use seq2seq_gpu::ops::all_kernels;

/// The distinct modules of the kernel table, by name (one module per name).
fn modules() -> BTreeMap<&'static str, &'static Module> {
    let mut modules: BTreeMap<&str, &Module> = BTreeMap::new();
    for kernel in all_kernels() {
        let seen = modules.entry(kernel.module.name).or_insert(kernel.module);
        assert!(
            std::ptr::eq(*seen, kernel.module),
            "two modules are named {}",
            kernel.module.name
        );
    }
    modules
}

fn parse(module: &Module) -> (naga::Module, String) {
    let source = module.source();
    let parsed = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{}: {}", module.name, e.emit_to_string(&source)));
    // unpack2x16float (packed f16 weights) is core WGSL; naga gates it behind this
    // capability for GL targets, and wgpu grants it on Vulkan, Metal, DX12 and WebGPU.
    // WGSL f16 is only used by the modules wgpu builds with the shader-f16 feature.
    let mut capabilities = naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    if module.needs_shader_f16 {
        capabilities |= naga::valid::Capabilities::SHADER_FLOAT16;
    }
    if module.needs_subgroups {
        capabilities |= naga::valid::Capabilities::SUBGROUP;
    }
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
        .validate(&parsed)
        .unwrap_or_else(|e| panic!("{}: {}", module.name, e.emit_to_string(&source)));
    (parsed, source)
}

/// The module's global at group 0, `binding`.
fn global(module: &naga::Module, binding: u32) -> Option<&naga::GlobalVariable> {
    module.global_variables.iter().map(|(_, g)| g).find(|g| {
        g.binding
            .as_ref()
            .is_some_and(|b| b.group == 0 && b.binding == binding)
    })
}

/// The WGSL struct at `binding` as a layout (its name, size and (field, offset) list), which
/// must be bound as `binding` says.
fn wgsl_struct(
    module: &naga::Module,
    binding: u32,
    bound: ParamsBinding,
) -> (String, usize, Vec<(String, usize)>) {
    let var = global(module, binding).expect("a struct at this binding");
    let space = match bound {
        ParamsBinding::Uniform => naga::AddressSpace::Uniform,
        ParamsBinding::Storage => naga::AddressSpace::Storage {
            access: naga::StorageAccess::LOAD,
        },
    };
    assert_eq!(var.space, space, "binding {binding}");
    let ty = &module.types[var.ty];
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        panic!("the uniform at binding {binding} is not a struct");
    };
    let fields = members
        .iter()
        .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
        .collect();
    (ty.name.clone().unwrap_or_default(), *span as usize, fields)
}

fn rust_uniform(layout: &UniformLayout) -> (String, usize, Vec<(String, usize)>) {
    let fields = layout
        .fields
        .iter()
        .map(|(name, offset)| (name.to_string(), *offset))
        .collect();
    (layout.name.to_string(), layout.size, fields)
}

/// The module's storage bindings from binding 2 on, as the kernel table states them.
fn wgsl_storage(module: &naga::Module) -> Vec<Access> {
    let mut found = Vec::new();
    while let Some(var) = global(module, 2 + found.len() as u32) {
        let naga::AddressSpace::Storage { access } = var.space else {
            panic!("binding {} is not a storage buffer", 2 + found.len());
        };
        found.push(if access.contains(naga::StorageAccess::STORE) {
            Access::ReadWrite
        } else {
            Access::Read
        });
    }
    let declared = module
        .global_variables
        .iter()
        .filter(|(_, g)| g.binding.is_some())
        .count();
    assert_eq!(
        declared,
        2 + found.len(),
        "bindings must run 0, 1, 2, ... without gaps"
    );
    found
}

#[test]
fn every_kernel_matches_its_wgsl() {
    let kernels = all_kernels();
    for (name, module) in modules() {
        let (parsed, _) = parse(module);
        assert_eq!(
            wgsl_struct(&parsed, 1, ParamsBinding::Uniform),
            rust_uniform(STEP_LAYOUT),
            "{name}: the step uniform"
        );
        let storage = wgsl_storage(&parsed);
        let listed: Vec<&Kernel> = kernels
            .iter()
            .filter(|k| std::ptr::eq(k.module, module))
            .collect();
        let entry_points: BTreeSet<&str> = parsed
            .entry_points
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let in_table: BTreeSet<&str> = listed.iter().map(|k| k.entry).collect();
        assert_eq!(
            entry_points, in_table,
            "{name}: the entry points of the module and of the kernel table"
        );
        assert_eq!(
            listed.len(),
            in_table.len(),
            "{name}: a kernel listed twice"
        );
        for kernel in listed {
            assert_eq!(
                kernel.storage,
                storage.as_slice(),
                "{name}::{}: storage bindings",
                kernel.entry
            );
            assert_eq!(
                rust_uniform(kernel.params),
                wgsl_struct(&parsed, 0, kernel.params_binding),
                "{name}::{}: the Rust parameter struct and the WGSL one",
                kernel.entry
            );
            // WebGPU's default maxStorageBuffersPerShaderStage, which browsers grant.
            let storage_buffers =
                kernel.storage.len() + usize::from(kernel.params_binding == ParamsBinding::Storage);
            assert!(
                storage_buffers <= 8,
                "{name}::{}: {storage_buffers} storage buffers",
                kernel.entry
            );
        }
    }
}

#[test]
fn every_shader_file_is_in_a_module() {
    let sources: Vec<String> = modules().values().map(|m| m.source()).collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            sources.iter().any(|s| s.contains(&text)),
            "{} is in no module of the kernel table",
            path.display()
        );
        files += 1;
    }
    assert!(files >= 16, "only {files} shader files");
}

#[test]
fn every_kernel_builds_a_pipeline() {
    let gpu = common::gpu();
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    let kernels = all_kernels();
    assert!(kernels.iter().any(|k| k.module.needs_shader_f16));
    assert!(kernels.iter().any(|k| k.module.name == "matmul_i8"));
    assert!(kernels.iter().any(|k| k.module.needs_subgroups));
    for kernel in kernels {
        if (kernel.module.needs_shader_f16 && !gpu.native_f16())
            || (kernel.module.needs_subgroups && !gpu.subgroups())
        {
            continue;
        }
        let params = vec![0u8; kernel.params.size];
        let storage: Vec<wgpu::Buffer> = kernel
            .storage
            .iter()
            .map(|_| gpu.upload("probe", &[0u32; 4]).unwrap())
            .collect();
        let refs: Vec<&wgpu::Buffer> = storage.iter().collect();
        rec.dispatch_bytes(&kernel, &params, &refs, [1, 1, 1])
            .unwrap_or_else(|e| panic!("{}: {e}", kernel.entry));
    }
    rec.finish().expect("bind groups for every kernel");
    gpu.check().expect("no device error");
}
