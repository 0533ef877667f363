//! How a kernel is described to the device: a WGSL module composed from `shaders/` files, an
//! entry point, its parameters and its storage bindings. Each op declares its own kernels
//! with these (see `ops`); binding 0 is always the kernel's parameters, binding 1 the decode
//! step, and storage buffers follow from binding 2 in the order listed.

/// The step uniform every module declares at binding 1 (see [`Step`]).
const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// A WGSL module: shared pieces first, then the kernel file.
#[derive(Debug)]
pub struct Module {
    /// Unique among modules: names the pipeline cache entry and error messages.
    pub name: &'static str,
    pub sources: &'static [&'static str],
    /// The module uses WGSL `f16`, which only builds on a device with `shader-f16`.
    pub needs_shader_f16: bool,
    /// The module uses subgroup operations, which only build on a device with `subgroups`.
    /// Naga (wgpu 30) takes them without WGSL's `enable subgroups` (it rejects the
    /// directive), and only native backends offer the feature, so no directive is written.
    pub needs_subgroups: bool,
}

impl Module {
    /// The complete source: `enable f16` where needed, the step uniform, then `sources`.
    pub fn source(&self) -> String {
        // WGSL wants enable directives before any declaration.
        let mut source = String::new();
        if self.needs_shader_f16 {
            source.push_str("enable f16;\n");
        }
        source.push_str(COMMON);
        for piece in self.sources {
            source.push('\n');
            source.push_str(piece);
        }
        source
    }
}

/// How a kernel uses one storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

/// A uniform struct as Rust lays it out: name, size, and each field's name and offset, so a
/// test can hold it against the WGSL struct of the same kernel.
#[derive(Debug, PartialEq, Eq)]
pub struct UniformLayout {
    pub name: &'static str,
    pub size: usize,
    pub fields: &'static [(&'static str, usize)],
}

/// A kernel's parameter struct (declared with [`uniform!`]).
pub trait Uniform: bytemuck::Pod {
    const LAYOUT: UniformLayout;
}

/// Declares a `repr(C)` uniform struct and its [`UniformLayout`], from one field list.
macro_rules! uniform {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ty),* $(,)?
    }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty),*
        }

        impl $crate::gpu::kernel::Uniform for $name {
            const LAYOUT: $crate::gpu::kernel::UniformLayout = $crate::gpu::kernel::UniformLayout {
                name: stringify!($name),
                size: std::mem::size_of::<$name>(),
                fields: &[$((stringify!($field), std::mem::offset_of!($name, $field))),*],
            };
        }
    };
}
pub(crate) use uniform;

/// Sequences whose decoding may begin at a step of their own (continuous batching); later
/// ones begin at step 0.
pub const MAX_ORIGINS: usize = 256;

uniform! {
    /// The decode step (`Step` in shaders/common.wgsl): tokens already in the cache of a
    /// sequence that began at step 0, and the step at which each sequence began.
    pub(crate) struct Step {
        pub(crate) pos: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
        origins: [[u32; 4]; MAX_ORIGINS / 4],
    }
}

/// The part of [`Step`] that changes at every replay: the position, padded to 16 bytes.
pub(crate) const STEP_HEAD_BYTES: u64 = 16;

/// The head of a [`Step`] at `pos`.
pub(crate) fn step_head(pos: u32) -> [u32; 4] {
    [pos, 0, 0, 0]
}

/// Byte offset of sequence `s`'s origin in [`Step`].
pub(crate) fn origin_offset(s: usize) -> u64 {
    std::mem::offset_of!(Step, origins) as u64 + 4 * s as u64
}

/// The layout of the step uniform at binding 1 of every module.
pub const STEP_LAYOUT: &UniformLayout = &Step::LAYOUT;

/// How binding 0 holds a kernel's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamsBinding {
    /// A read-only storage buffer, which no driver specialises a shader on. Lavapipe (Mesa
    /// 22.3, Debian 12's) inlines the values of uniform buffers that decide branches and
    /// loops into the shader and, once it has found that worth it at a pipeline's first
    /// dispatch, compiles a new variant at every later dispatch, keeping each: batched and
    /// beam decoding ran 10-20x slower there and grew by about 15 MB per step
    /// (BENCHMARKS.md, 2026-12-07).
    Storage,
    /// A uniform buffer: for kernels whose storage bindings already reach WebGPU's default
    /// limit of 8 per stage.
    Uniform,
}

/// One compute entry point with its parameters and storage bindings.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    pub module: &'static Module,
    pub entry: &'static str,
    pub params: &'static UniformLayout,
    pub params_binding: ParamsBinding,
    pub storage: &'static [Access],
}
