//! Compiled shader modules and compute pipelines, built once per kernel and reused.

use std::collections::HashMap;
use std::sync::Mutex;

use super::shaders::{Access, Kernel, Shader};
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
pub struct PipelineCache {
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Kernel, Pipeline>>,
}

impl PipelineCache {
    pub fn get(&self, device: &wgpu::Device, kernel: &Kernel) -> Result<Pipeline> {
        if let Some(found) = lock(&self.pipelines).get(kernel) {
            return Ok(found.clone());
        }
        let module = self.module(device, kernel.shader)?;
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(kernel.entry),
            entries: &layout_entries(kernel),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let scope = error_scope(device);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        if let Some(error) = pop_ready_error(scope) {
            return Err(Error::Gpu(format!("pipeline {}: {error}", kernel.entry)));
        }
        let built = Pipeline { pipeline, layout };
        lock(&self.pipelines).insert(*kernel, built.clone());
        Ok(built)
    }

    fn module(&self, device: &wgpu::Device, shader: Shader) -> Result<wgpu::ShaderModule> {
        if let Some(found) = lock(&self.modules).get(&shader) {
            return Ok(found.clone());
        }
        let scope = error_scope(device);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.name()),
            source: wgpu::ShaderSource::Wgsl(shader.source().into()),
        });
        if let Some(error) = pop_ready_error(scope) {
            return Err(Error::Gpu(format!("shader {}: {error}", shader.name())));
        }
        lock(&self.modules).insert(shader, module.clone());
        Ok(module)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens an error scope around pipeline creation on native backends, where scopes resolve
/// synchronously. In the browser they resolve later, so no scope is opened there and errors
/// reach the device's uncaptured-error handler (`Gpu::check`) with their full message.
#[cfg(not(target_arch = "wasm32"))]
fn error_scope(device: &wgpu::Device) -> Option<wgpu::ErrorScopeGuard> {
    Some(device.push_error_scope(wgpu::ErrorFilter::Validation))
}

#[cfg(target_arch = "wasm32")]
fn error_scope(_: &wgpu::Device) -> Option<wgpu::ErrorScopeGuard> {
    None
}

/// The error a native scope captured (ready at once there).
fn pop_ready_error(scope: Option<wgpu::ErrorScopeGuard>) -> Option<wgpu::Error> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(scope?.pop());
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(error) => error,
        Poll::Pending => None,
    }
}

fn layout_entries(kernel: &Kernel) -> Vec<wgpu::BindGroupLayoutEntry> {
    let uniform = |binding| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let mut entries = vec![uniform(0), uniform(1)];
    for (i, access) in kernel.storage.iter().enumerate() {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: 2 + i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage {
                    read_only: *access == Access::Read,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }
    entries
}
