//! Recording of kernel dispatches into a reusable plan.
//!
//! A plan is built once (bind groups, one uniform buffer holding every dispatch's
//! parameters) and can then be encoded any number of times: the decoder records one step
//! and replays it at every position, since positions come from the plan's step uniform.
//! Each plan owns its step uniform, so generations on one device never share a position.
//! Several replays at consecutive positions can go in one submission: each copies its
//! position into the step uniform from a buffer written once for all of them.

use super::context::{Gpu, MAX_STEPS_PER_SUBMIT};
use super::kernel::{
    Kernel, MAX_ORIGINS, STEP_HEAD_BYTES, Step, Uniform, origin_offset, step_head,
};
use super::pipelines::Pipeline;
use crate::error::{Error, Result};

struct Pending {
    kernel: KernelName,
    pipeline: Pipeline,
    params_offset: u64,
    params_size: u64,
    storage: Vec<wgpu::Buffer>,
    workgroups: [u32; 3],
}

pub struct Recorder<'g> {
    gpu: &'g Gpu,
    params: Vec<u8>,
    pending: Vec<Pending>,
}

impl<'g> Recorder<'g> {
    pub fn new(gpu: &'g Gpu) -> Self {
        Recorder {
            gpu,
            params: Vec::new(),
            pending: Vec::new(),
        }
    }

    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// Adds one dispatch of `kernel` with `params` at binding 0 and `storage` from binding 2.
    pub fn dispatch<P: Uniform>(
        &mut self,
        kernel: &Kernel,
        params: &P,
        storage: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) -> Result<()> {
        if P::LAYOUT != *kernel.params {
            return Err(Error::Gpu(format!(
                "{} takes {} parameters, got {}",
                kernel.entry,
                kernel.params.name,
                P::LAYOUT.name
            )));
        }
        self.dispatch_bytes(kernel, bytemuck::bytes_of(params), storage, workgroups)
    }

    /// [`Recorder::dispatch`] with the parameters as raw bytes (a test that builds every
    /// kernel's pipeline passes zeros of the declared size).
    pub fn dispatch_bytes(
        &mut self,
        kernel: &Kernel,
        params: &[u8],
        storage: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) -> Result<()> {
        if storage.len() != kernel.storage.len() || params.len() != kernel.params.size {
            return Err(Error::Gpu(format!(
                "{} takes {} storage buffers and {} bytes of parameters, got {} and {}",
                kernel.entry,
                kernel.storage.len(),
                kernel.params.size,
                storage.len(),
                params.len()
            )));
        }
        let max = self.gpu.limits.max_compute_workgroups_per_dimension;
        if let Some(&too_many) = workgroups.iter().find(|&&n| n > max) {
            return Err(Error::AdapterLimit {
                limit: "maxComputeWorkgroupsPerDimension",
                allowed: max as u64,
                what: format!("kernel {}", kernel.entry),
                needed: too_many as u64,
            });
        }
        if workgroups.contains(&0) {
            return Ok(());
        }
        let pipeline = self.gpu.pipelines.get(&self.gpu.device, kernel)?;
        // Parameters are bound as uniform or storage buffers (see `ParamsBinding`).
        let limits = &self.gpu.limits;
        let align = limits
            .min_uniform_buffer_offset_alignment
            .max(limits.min_storage_buffer_offset_alignment) as usize;
        let offset = self.params.len().next_multiple_of(align);
        let size = params.len().next_multiple_of(16);
        self.params.resize(offset, 0);
        self.params.extend_from_slice(params);
        self.params.resize(offset + size, 0);
        self.pending.push(Pending {
            kernel: KernelName {
                module: kernel.module.name,
                entry: kernel.entry,
            },
            pipeline,
            params_offset: offset as u64,
            params_size: size as u64,
            storage: storage.iter().map(|b| (*b).clone()).collect(),
            workgroups,
        });
        Ok(())
    }

    pub fn finish(self) -> Result<Plan> {
        let gpu = self.gpu;
        let size = (self.params.len() as u64).max(16);
        // Every dispatch's parameters share one buffer, which the device's limit bounds too.
        gpu.pool
            .check_size("the parameters of a recorded plan", size)?;
        let params = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("plan params"),
            size,
            usage: wgpu::BufferUsages::UNIFORM
                | wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.queue.write_buffer(&params, 0, &self.params);
        let step = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("plan step"),
            size: STEP_BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let positions = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("plan positions"),
            size: STEP_HEAD_BYTES * MAX_STEPS_PER_SUBMIT as u64,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut dispatches = Vec::with_capacity(self.pending.len());
        for p in self.pending {
            let mut entries = vec![
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &params,
                        offset: p.params_offset,
                        size: wgpu::BufferSize::new(p.params_size),
                    }),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: step.as_entire_binding(),
                },
            ];
            for (i, buffer) in p.storage.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: 2 + i as u32,
                    resource: buffer.as_entire_binding(),
                });
            }
            let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &p.pipeline.layout,
                entries: &entries,
            });
            dispatches.push(Dispatch {
                kernel: p.kernel,
                pipeline: p.pipeline.pipeline,
                bind_group,
                workgroups: p.workgroups,
            });
        }
        gpu.check()?;
        Ok(Plan {
            _params: params,
            step,
            positions,
            dispatches,
        })
    }
}

/// Which kernel a dispatch runs: its module and entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelName {
    pub module: &'static str,
    pub entry: &'static str,
}

pub(super) struct Dispatch {
    pub(super) kernel: KernelName,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

impl Dispatch {
    pub(super) fn record(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

const STEP_BYTES: u64 = std::mem::size_of::<Step>() as u64;

/// Recorded dispatches, ready to be encoded into a compute pass as often as needed.
pub struct Plan {
    _params: wgpu::Buffer,
    step: wgpu::Buffer,
    /// The positions of the replays of one submission, copied into `step` one by one.
    positions: wgpu::Buffer,
    pub(super) dispatches: Vec<Dispatch>,
}

impl Plan {
    /// Sets the decode position the next submission of this plan reads.
    pub fn set_step(&self, gpu: &Gpu, pos: u32) {
        gpu.queue
            .write_buffer(&self.step, 0, bytemuck::bytes_of(&step_head(pos)));
    }

    /// Sequence `sequence` (below [`MAX_ORIGINS`]) began at decode step `origin`: at step
    /// `pos` its cache holds `pos - origin` tokens.
    pub fn set_origin(&self, gpu: &Gpu, sequence: usize, origin: u32) -> Result<()> {
        if sequence >= MAX_ORIGINS {
            return Err(Error::invalid(format!(
                "sequence {sequence} cannot begin at a step of its own (at most {MAX_ORIGINS} can)"
            )));
        }
        gpu.queue.write_buffer(
            &self.step,
            origin_offset(sequence),
            bytemuck::bytes_of(&origin),
        );
        Ok(())
    }

    pub fn dispatches(&self) -> usize {
        self.dispatches.len()
    }

    /// The kernel of each dispatch, in order.
    pub fn kernels(&self) -> Vec<KernelName> {
        self.dispatches.iter().map(|d| d.kernel).collect()
    }

    /// Encodes `count` replays at positions `first..first + count`, calling `after` with
    /// each replay's index once it is encoded (to copy out what it produced before the
    /// next one overwrites it).
    pub fn encode_steps(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        first: u32,
        count: usize,
        mut after: impl FnMut(usize, &mut wgpu::CommandEncoder),
    ) -> Result<()> {
        if count == 0 || count > MAX_STEPS_PER_SUBMIT {
            return Err(Error::invalid(format!(
                "{count} steps in one submission (1 to {MAX_STEPS_PER_SUBMIT})"
            )));
        }
        let heads: [[u32; 4]; MAX_STEPS_PER_SUBMIT] =
            std::array::from_fn(|i| step_head(first + i as u32));
        gpu.queue
            .write_buffer(&self.positions, 0, bytemuck::cast_slice(&heads[..count]));
        for i in 0..count {
            // Only the position changes; each sequence's origin stays.
            encoder.copy_buffer_to_buffer(
                &self.positions,
                i as u64 * STEP_HEAD_BYTES,
                &self.step,
                0,
                STEP_HEAD_BYTES,
            );
            self.encode(encoder);
            after(i, encoder);
        }
        Ok(())
    }

    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        for d in &self.dispatches {
            d.record(&mut pass);
        }
    }

    /// Encodes and submits this plan alone.
    pub fn submit(&self, gpu: &Gpu) {
        let mut encoder = gpu.encoder();
        self.encode(&mut encoder);
        gpu.submit(encoder);
    }
}

/// Splits `count` workgroups over x and y so neither exceeds the per-dimension limit;
/// kernels recombine the index as `x + y * num_workgroups.x`.
pub fn grid_1d(count: u32, limit: u32) -> [u32; 3] {
    if count <= limit {
        [count, 1, 1]
    } else {
        [limit, count.div_ceil(limit), 1]
    }
}
