//! The wgpu device: adapter selection with its real limits, error capture, submission and
//! asynchronous readback (the browser cannot block, so nothing here waits synchronously
//! except through `device.poll` on native, where that is how callbacks are driven).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::pipelines::PipelineCache;
use super::pool::BufferPool;
use super::sync::lock;
use crate::error::{Error, Result};
use crate::platform::{ADAPTER_HINT, drive_callbacks};

pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    info: wgpu::AdapterInfo,
    pub(crate) pipelines: PipelineCache,
    pub(crate) pool: BufferPool,
    /// Bound where a kernel's optional input is switched off by its flags.
    pub(crate) placeholder: wgpu::Buffer,
    /// The same for a writable binding a kernel does not use: one buffer may not be bound
    /// both read-only and writable in a dispatch.
    pub(crate) write_placeholder: wgpu::Buffer,
    native_f16: bool,
    subgroups: bool,
    timestamps: bool,
    errors: Arc<Mutex<Option<String>>>,
    /// Bytes written to the queue since its last submission.
    staged: Mutex<u64>,
    /// The largest weight buffer made so far (what a model needs of the binding limit).
    largest_weights: Mutex<u64>,
    submits: AtomicU64,
    readbacks: AtomicU64,
    run_ahead_steps: Option<usize>,
    fused_kernels: bool,
    key_splits: Option<usize>,
}

/// Command submissions and readbacks a device has made: what a decode step costs in round
/// trips (see [`Gpu::traffic`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub submits: u64,
    pub readbacks: u64,
}

/// The smallest buffer limit [`GpuOptions::max_buffer_bytes`] takes: below it even the
/// engine's small fixed buffers would not fit.
pub const MIN_BUFFER_BYTES: u64 = 4096;

/// The most replays of a plan one submission runs (`Plan::encode_steps`).
pub const MAX_STEPS_PER_SUBMIT: usize = 16;

/// The most workgroups that share one query row's keys in attention.
pub const MAX_KEY_SPLITS: usize = 64;

/// Weight bytes written between submissions while a model loads (see `write_weights`).
const STAGING_BYTES: u64 = 64 << 20;

/// Device features to use when the adapter offers them.
#[derive(Clone, Copy, Debug)]
pub struct GpuOptions {
    /// Read f16 weights natively where the adapter has `shader-f16` (on by default; off
    /// tests the packed path that adapters without it use).
    pub shader_f16: bool,
    /// Ask for at most this many bytes per buffer (maxBufferSize and
    /// maxStorageBufferBindingSize), as a smaller device would allow: checks that a model
    /// fits one.
    pub max_buffer_bytes: Option<u64>,
    /// Greedy steps per submission and readback (1 to `MAX_STEPS_PER_SUBMIT`), instead of
    /// the engine's choice for the adapter and model (see `generate::run_ahead_steps`).
    pub run_ahead_steps: Option<usize>,
    /// Record decode steps with the fused matmul (input norms, the KV append and gated
    /// activations folded in: fewer dispatches), instead of the choice for the adapter: on
    /// a GPU, not on a CPU adapter, where its redundant per-workgroup work costs more than
    /// the dispatches it saves (measured on lavapipe, see BENCHMARKS.md).
    pub fused_kernels: Option<bool>,
    /// Reduce with subgroup operations where the adapter has `subgroups` (on by default; off
    /// tests the workgroup-memory path that other adapters, and browsers, use).
    pub subgroups: bool,
    /// Split every attention's keys across this many workgroups (2 to 64), instead of the
    /// choice for the adapter and shape (see `ops::key_splits`): tests the split path on
    /// adapters that would not take it.
    pub key_splits: Option<usize>,
    /// Ask for `timestamp-query` where the adapter has it, for `Plan::profile` (the
    /// benchmark's GPU time per kernel). Off by default: nothing else needs it.
    pub timestamps: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            shader_f16: true,
            max_buffer_bytes: None,
            run_ahead_steps: None,
            fused_kernels: None,
            subgroups: true,
            key_splits: None,
            timestamps: false,
        }
    }
}

impl Gpu {
    /// Picks the high-performance adapter (a software one if that is all there is) and asks
    /// for its full limits: wgpu's defaults cap storage bindings at 128 MiB, too small for
    /// the embedding tables of large vocabularies.
    pub async fn new() -> Result<Arc<Gpu>> {
        Self::with_options(GpuOptions::default()).await
    }

    pub async fn with_options(options: GpuOptions) -> Result<Arc<Gpu>> {
        // Compute needs Vulkan, Metal, DX12 or WebGPU; probing GL would only add noise
        // (and GL lacks storage buffers in compute on many drivers). WGPU_BACKEND overrides.
        let descriptor = wgpu::InstanceDescriptor {
            backends: wgpu::Backends::PRIMARY,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        };
        let instance = wgpu::Instance::new(descriptor.with_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoAdapter(format!("{e}; {ADAPTER_HINT}")))?;
        if let Some(steps) = options.run_ahead_steps
            && !(1..=MAX_STEPS_PER_SUBMIT).contains(&steps)
        {
            return Err(Error::invalid(format!(
                "run-ahead of {steps} steps (use 1 to {MAX_STEPS_PER_SUBMIT})"
            )));
        }
        if let Some(splits) = options.key_splits
            && !(2..=MAX_KEY_SPLITS).contains(&splits)
        {
            return Err(Error::invalid(format!(
                "{splits} key splits (use 2 to {MAX_KEY_SPLITS})"
            )));
        }
        let info = adapter.get_info();
        let mut limits = adapter.limits();
        if let Some(bytes) = options.max_buffer_bytes {
            if bytes < MIN_BUFFER_BYTES {
                return Err(Error::invalid(format!(
                    "a buffer limit of {bytes} bytes is below the smallest one usable, {MIN_BUFFER_BYTES}"
                )));
            }
            limits.max_buffer_size = limits.max_buffer_size.min(bytes);
            limits.max_storage_buffer_binding_size =
                limits.max_storage_buffer_binding_size.min(bytes);
        }
        let native_f16 =
            options.shader_f16 && adapter.features().contains(wgpu::Features::SHADER_F16);
        let subgroups = options.subgroups && adapter.features().contains(wgpu::Features::SUBGROUP);
        let mut required_features = wgpu::Features::empty();
        if native_f16 {
            required_features |= wgpu::Features::SHADER_F16;
        }
        if subgroups {
            required_features |= wgpu::Features::SUBGROUP;
        }
        let timestamps =
            options.timestamps && adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        if timestamps {
            required_features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("seq2seq-gpu"),
                required_features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::DeviceRequest(e.to_string()))?;

        // wgpu's default handler panics; keep the first error and report it as a value instead.
        let errors = Arc::new(Mutex::new(None));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            let mut slot = lock(&sink);
            slot.get_or_insert_with(|| error.to_string());
        }));

        // A lost device (driver reset, destroy(), a browser reclaiming the GPU) fails every
        // later call with this message instead of leaving readbacks waiting.
        let lost = errors.clone();
        device.set_device_lost_callback(move |reason, message| {
            // The root cause replaces whatever validation error the loss triggered first.
            let mut slot = lock(&lost);
            *slot = Some(format!("the GPU device was lost ({reason:?}): {message}"));
        });

        let placeholder = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("placeholder"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let write_placeholder = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("write placeholder"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let fused_kernels = options.fused_kernels.unwrap_or(!is_cpu(&info));
        let max_buffer = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        Ok(Arc::new(Gpu {
            pool: BufferPool::new(device.clone(), max_buffer),
            device,
            queue,
            limits,
            info,
            pipelines: PipelineCache::default(),
            placeholder,
            write_placeholder,
            native_f16,
            subgroups,
            timestamps,
            errors,
            staged: Mutex::new(0),
            largest_weights: Mutex::new(0),
            submits: AtomicU64::new(0),
            readbacks: AtomicU64::new(0),
            run_ahead_steps: options.run_ahead_steps,
            fused_kernels,
            key_splits: options.key_splits,
        }))
    }

    /// Releases the device at once (its buffers with it): every later use fails with an
    /// error saying the device was lost.
    pub fn destroy(&self) {
        *lock(&self.errors) = Some("the GPU device was lost: it was destroyed".into());
        self.device.destroy();
    }

    /// Bytes of work buffers the pool has ever created (they are reused, never freed while
    /// the device lives): flat once every shape in use has been seen.
    pub fn pool_bytes(&self) -> u64 {
        self.pool.allocated_bytes()
    }

    /// (buffers alive, their bytes) on the device after finishing submitted work, from
    /// wgpu's internal counters: zero unless wgpu's `counters` feature is on (the tests
    /// turn it on to check that nothing leaks).
    pub fn live_buffers(&self) -> (isize, isize) {
        // Writes not yet followed by a submission keep their staging buffers until one
        // comes (a generation dropped after rewriting its row tables leaves a few).
        self.queue.submit(std::iter::empty());
        let _ = drive_callbacks(&self.device);
        let counters = self.device.get_internal_counters();
        (
            counters.hal.buffers.read(),
            counters.hal.buffer_memory.read(),
        )
    }

    /// Whether f16 weights are read as WGSL `f16` (the device has `shader-f16`) rather than
    /// unpacked from u32 pairs.
    pub fn native_f16(&self) -> bool {
        self.native_f16
    }

    /// Whether kernels reduce with subgroup operations (the device has `subgroups`, and
    /// [`GpuOptions::subgroups`] allows them).
    pub fn subgroups(&self) -> bool {
        self.subgroups
    }

    /// Whether the device takes timestamp queries (see [`GpuOptions::timestamps`]).
    pub fn timestamps(&self) -> bool {
        self.timestamps
    }

    /// The greedy run-ahead asked for in [`GpuOptions::run_ahead_steps`].
    pub fn run_ahead_steps(&self) -> Option<usize> {
        self.run_ahead_steps
    }

    /// Whether decode steps use the fused matmul (see [`GpuOptions::fused_kernels`]).
    pub fn fused_kernels(&self) -> bool {
        self.fused_kernels
    }

    /// The key splits asked for in [`GpuOptions::key_splits`].
    pub fn key_splits(&self) -> Option<usize> {
        self.key_splits
    }

    /// Whether the adapter runs on the CPU (lavapipe, SwiftShader, WARP).
    pub fn is_software(&self) -> bool {
        is_cpu(&self.info)
    }

    /// "name (backend, device type)", for the CLI and the benchmark.
    pub fn adapter_description(&self) -> String {
        // Browsers may hide the adapter's name.
        let name = match self.info.name.trim() {
            "" => "unnamed adapter",
            name => name,
        };
        format!(
            "{name} ({:?}, {:?})",
            self.info.backend, self.info.device_type
        )
    }

    /// The first validation or out-of-memory error the device reported, if any.
    pub fn check(&self) -> Result<()> {
        let slot = lock(&self.errors);
        match slot.as_ref() {
            Some(message) => Err(Error::Gpu(message.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    /// A storage buffer holding `data`, for weights and inputs that outlive one generation.
    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = self.weight_buffer(label, bytes.len() as u64)?;
        self.write_weights(&buffer, 0, bytes);
        Ok(buffer)
    }

    /// The largest weight buffer made on this device so far, in bytes: with tensors in row
    /// blocks, at most the binding limit.
    pub fn largest_weight_buffer(&self) -> u64 {
        *lock(&self.largest_weights)
    }

    /// The largest buffer this device binds (its limit, or the simulated one).
    pub fn max_buffer_bytes(&self) -> u64 {
        self.pool.max_bytes()
    }

    /// An empty storage buffer for `bytes` of weights, checked against the device's limit.
    pub(crate) fn weight_buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        // Whole vec4s: kernels bind their operands as arrays of vec4.
        let size = bytes.max(16).next_multiple_of(16);
        self.pool.check_size(label, size)?;
        let mut largest = lock(&self.largest_weights);
        *largest = (*largest).max(size);
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    /// Writes `bytes` (whole 4-byte words) at `offset`. wgpu keeps a staging copy of every
    /// write until the next submission finishes, so after every `STAGING_BYTES` the queue is
    /// submitted (and natively waited on): a model loads with a bounded staging footprint
    /// instead of a second copy of itself.
    pub(crate) fn write_weights(&self, buffer: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        self.queue.write_buffer(buffer, offset, bytes);
        let mut staged = lock(&self.staged);
        *staged += bytes.len() as u64;
        if *staged >= STAGING_BYTES {
            *staged = 0;
            self.queue.submit([]);
            // A failed wait surfaces through `check` like any device error.
            let _ = drive_callbacks(&self.device);
        }
    }

    /// Submissions and readbacks so far.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            submits: self.submits.load(Ordering::Relaxed),
            readbacks: self.readbacks.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.submits.fetch_add(1, Ordering::Relaxed);
        self.queue.submit([encoder.finish()]);
    }

    /// Submits `encoder` after copying `src[..len]` into `staging`, then maps `staging` and
    /// returns its contents. The only way results leave the GPU.
    pub async fn submit_and_read(
        &self,
        encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        staging: &wgpu::Buffer,
        len_bytes: u64,
    ) -> Result<Vec<u8>> {
        self.submit_readback(encoder, src, staging, len_bytes)?;
        self.read_staging(staging, len_bytes).await
    }

    /// The first half of [`Gpu::submit_and_read`]: submits `encoder` with the copy into
    /// `staging`, without waiting, so that the time spent recording and the time spent
    /// waiting can be told apart.
    pub(crate) fn submit_readback(
        &self,
        mut encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        staging: &wgpu::Buffer,
        len_bytes: u64,
    ) -> Result<()> {
        self.check()?;
        encoder.copy_buffer_to_buffer(src, 0, staging, 0, len_bytes);
        self.submit(encoder);
        self.readbacks.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The second half: waits for the submitted copy into `staging` and returns it.
    pub(crate) async fn read_staging(
        &self,
        staging: &wgpu::Buffer,
        len_bytes: u64,
    ) -> Result<Vec<u8>> {
        let slice = staging.slice(..len_bytes);
        let (sender, receiver) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        drive_callbacks(&self.device).map_err(|e| Error::Gpu(e.to_string()))?;
        let mapped = receiver
            .await
            .map_err(|_| Error::Gpu("the device was lost before the readback finished".into()))?;
        self.check()?;
        mapped.map_err(|e| Error::Gpu(e.to_string()))?;
        let bytes = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(e.to_string()))?
            .to_vec();
        staging.unmap();
        Ok(bytes)
    }

    pub(crate) fn staging_buffer(&self, size: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("staging"),
            size: size.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Reads `len` 4-byte elements of a buffer back (tests and diagnostics; generation
    /// reads through its own preallocated staging buffers).
    pub async fn read<T: bytemuck::Pod>(
        &self,
        buffer: &wgpu::Buffer,
        len: usize,
    ) -> Result<Vec<T>> {
        let bytes = (len * std::mem::size_of::<T>()) as u64;
        let staging = self.staging_buffer(bytes);
        let raw = self
            .submit_and_read(self.encoder(), buffer, &staging, bytes)
            .await?;
        Ok(bytemuck::pod_collect_to_vec(&raw))
    }
}

/// Whether an adapter runs on the CPU (lavapipe, SwiftShader: a browser's fallback adapter).
fn is_cpu(info: &wgpu::AdapterInfo) -> bool {
    info.device_type == wgpu::DeviceType::Cpu
}
