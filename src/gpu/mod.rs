//! Everything that talks to wgpu: the device, kernel descriptions, pipelines, the buffer
//! pool, tensors and recorded plans.

pub mod context;
pub mod kernel;
pub mod pipelines;
pub mod plan;
pub mod pool;
pub mod profile;
mod sync;
pub mod tensor;
pub mod writer;

pub use context::{
    Gpu, GpuOptions, MAX_KEY_SPLITS, MAX_STEPS_PER_SUBMIT, MIN_BUFFER_BYTES, Traffic,
};
pub use kernel::{Access, Kernel, Module, ParamsBinding, Uniform, UniformLayout};
pub use plan::{KernelName, Plan, Recorder};
pub use profile::DispatchTime;
pub use tensor::{Encoding, RowBlocks, Tensor, View, Workspace};
pub use writer::{Element, TensorWriter};
