//! Everything that talks to wgpu: device, kernels, pipelines, buffers, recorded plans.

pub mod buffers;
pub mod context;
pub mod pipelines;
pub mod plan;
pub mod shaders;

pub use buffers::{Encoding, Tensor, View, Workspace};
pub use context::{Gpu, GpuOptions};
pub use plan::{Plan, Recorder};
