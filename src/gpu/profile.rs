//! GPU time per dispatch of a recorded plan, from timestamp queries: the benchmark's view of
//! where a decode step's time goes. Each dispatch runs in a compute pass of its own, with a
//! timestamp at the pass's start and end (the WebGPU way; timestamps inside a pass are a
//! native-only extension), so the figures leave out what one pass saves between dispatches.

use super::context::Gpu;
use super::plan::{KernelName, Plan};
use crate::error::{Error, Result};

/// Timestamps one query set holds (wgpu's limit): two per dispatch.
const QUERIES_PER_SET: usize = wgpu::QUERY_SET_MAX_QUERIES as usize;

/// One dispatch's GPU time.
#[derive(Clone, Copy, Debug)]
pub struct DispatchTime {
    pub kernel: KernelName,
    pub nanos: f64,
}

impl Plan {
    /// Replays the plan once, timing each dispatch on the GPU. Needs a device with
    /// `timestamp-query` ([`GpuOptions::timestamps`](super::GpuOptions::timestamps)).
    pub async fn profile(&self, gpu: &Gpu) -> Result<Vec<DispatchTime>> {
        if !gpu.timestamps() {
            return Err(Error::invalid(
                "GPU timings need a device with timestamp-query (GpuOptions::timestamps, and an adapter that has it)",
            ));
        }
        let period = f64::from(gpu.queue.get_timestamp_period());
        let mut times = Vec::with_capacity(self.dispatches.len());
        for chunk in self.dispatches.chunks(QUERIES_PER_SET / 2) {
            let count = 2 * chunk.len() as u32;
            let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("dispatch timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let bytes = u64::from(count) * 8;
            let resolved = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("resolved timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut encoder = gpu.encoder();
            for (i, dispatch) in chunk.iter().enumerate() {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(dispatch.kernel.entry),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &queries,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                dispatch.record(&mut pass);
            }
            encoder.resolve_query_set(&queries, 0..count, &resolved, 0);
            let staging = gpu.staging_buffer(bytes);
            let raw = gpu
                .submit_and_read(encoder, &resolved, &staging, bytes)
                .await?;
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
            for (dispatch, pair) in chunk.iter().zip(ticks.chunks(2)) {
                times.push(DispatchTime {
                    kernel: dispatch.kernel,
                    nanos: pair[1].saturating_sub(pair[0]) as f64 * period,
                });
            }
        }
        Ok(times)
    }
}
