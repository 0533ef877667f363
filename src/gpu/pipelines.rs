//! Compiled shader modules and compute pipelines, built once per kernel and reused.

use std::collections::HashMap;
use std::sync::Mutex;

use super::kernel::{Access, Kernel, Module, ParamsBinding};
use super::sync::lock;
use crate::error::{Error, Result};
use crate::platform::{scope_error, validation_scope};

#[derive(Clone)]
pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Modules by name; pipelines by (module name, entry point).
#[derive(Default)]
pub struct PipelineCache {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<(&'static str, &'static str), Pipeline>>,
}

impl PipelineCache {
    pub fn get(&self, device: &wgpu::Device, kernel: &Kernel) -> Result<Pipeline> {
        let key = (kernel.module.name, kernel.entry);
        if let Some(found) = lock(&self.pipelines).get(&key) {
            return Ok(found.clone());
        }
        let module = self.module(device, kernel.module)?;
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(kernel.entry),
            entries: &layout_entries(kernel),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let scope = validation_scope(device);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        if let Some(error) = scope_error(scope) {
            return Err(Error::Gpu(format!("pipeline {}: {error}", kernel.entry)));
        }
        let built = Pipeline { pipeline, layout };
        lock(&self.pipelines).insert(key, built.clone());
        Ok(built)
    }

    fn module(&self, device: &wgpu::Device, module: &'static Module) -> Result<wgpu::ShaderModule> {
        if let Some(found) = lock(&self.modules).get(module.name) {
            return Ok(found.clone());
        }
        let scope = validation_scope(device);
        let compiled = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(module.name),
            source: wgpu::ShaderSource::Wgsl(module.source().into()),
        });
        if let Some(error) = scope_error(scope) {
            return Err(Error::Gpu(format!("shader {}: {error}", module.name)));
        }
        lock(&self.modules).insert(module.name, compiled.clone());
        Ok(compiled)
    }
}

fn layout_entries(kernel: &Kernel) -> Vec<wgpu::BindGroupLayoutEntry> {
    let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let storage = |read_only| wgpu::BufferBindingType::Storage { read_only };
    let params = match kernel.params_binding {
        ParamsBinding::Storage => storage(true),
        ParamsBinding::Uniform => wgpu::BufferBindingType::Uniform,
    };
    let mut entries = vec![entry(0, params), entry(1, wgpu::BufferBindingType::Uniform)];
    for (i, access) in kernel.storage.iter().enumerate() {
        entries.push(entry(2 + i as u32, storage(*access == Access::Read)));
    }
    entries
}
