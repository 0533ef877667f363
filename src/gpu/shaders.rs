//! The WGSL kernels of `shaders/`, composed into modules, and the binding layout of each
//! entry point. Binding 0 is always the kernel's uniform parameters and binding 1 the decode
//! step; storage buffers follow from binding 2 in the order listed here.

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const ACTIVATION: &str = include_str!("../../shaders/activation.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const WEIGHTS_F32: &str = include_str!("../../shaders/weights_f32.wgsl");
const WEIGHTS_F16: &str = include_str!("../../shaders/weights_f16.wgsl");
const WEIGHTS_I8: &str = include_str!("../../shaders/weights_i8.wgsl");
const WEIGHTS_F16_NATIVE: &str = include_str!("../../shaders/weights_f16_native.wgsl");
const MATMUL_BODY: &str = include_str!("../../shaders/matmul.wgsl");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Matmul,
    /// The matmul kernels over f16 weights packed two per u32, for adapters without
    /// `shader-f16`.
    MatmulF16,
    /// The same f16 weights read as WGSL `f16` (adapters with `shader-f16`).
    MatmulF16Native,
    /// The matmul kernels over int8 weights with a scale per row.
    MatmulI8,
    Attention,
    Norm,
    Softmax,
    Elementwise,
    Embedding,
    KvCache,
    Argmax,
    Ssru,
    Gather,
}

impl Shader {
    pub const ALL: [Shader; 13] = [
        Shader::Matmul,
        Shader::MatmulF16,
        Shader::MatmulF16Native,
        Shader::MatmulI8,
        Shader::Attention,
        Shader::Norm,
        Shader::Softmax,
        Shader::Elementwise,
        Shader::Embedding,
        Shader::KvCache,
        Shader::Argmax,
        Shader::Ssru,
        Shader::Gather,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul",
            Shader::MatmulF16 => "matmul_f16",
            Shader::MatmulF16Native => "matmul_f16_native",
            Shader::MatmulI8 => "matmul_i8",
            Shader::Attention => "attention",
            Shader::Norm => "norm",
            Shader::Softmax => "softmax",
            Shader::Elementwise => "elementwise",
            Shader::Embedding => "embedding",
            Shader::KvCache => "kv_cache",
            Shader::Argmax => "argmax",
            Shader::Ssru => "ssru",
            Shader::Gather => "gather",
        }
    }

    /// Whether the module only builds on a device with wgpu's `SHADER_F16` feature.
    pub fn needs_shader_f16(self) -> bool {
        self == Shader::MatmulF16Native
    }

    /// The complete module source: shared pieces first, then the kernel file.
    pub fn source(self) -> String {
        let (deps, body): (&[&str], &str) = match self {
            Shader::Matmul => (&[ACTIVATION, WEIGHTS_F32], MATMUL_BODY),
            Shader::MatmulF16 => (&[ACTIVATION, WEIGHTS_F16], MATMUL_BODY),
            Shader::MatmulF16Native => (&[ACTIVATION, WEIGHTS_F16_NATIVE], MATMUL_BODY),
            Shader::MatmulI8 => (&[ACTIVATION, WEIGHTS_I8], MATMUL_BODY),
            Shader::Attention => (&[], include_str!("../../shaders/attention.wgsl")),
            Shader::Norm => (&[REDUCE], include_str!("../../shaders/norm.wgsl")),
            Shader::Softmax => (&[REDUCE], include_str!("../../shaders/softmax.wgsl")),
            Shader::Elementwise => (
                &[ACTIVATION],
                include_str!("../../shaders/elementwise.wgsl"),
            ),
            Shader::Embedding => (&[], include_str!("../../shaders/embedding.wgsl")),
            Shader::KvCache => (&[], include_str!("../../shaders/kv_cache.wgsl")),
            Shader::Argmax => (&[REDUCE], include_str!("../../shaders/argmax.wgsl")),
            Shader::Ssru => (&[], include_str!("../../shaders/ssru.wgsl")),
            Shader::Gather => (&[], include_str!("../../shaders/gather.wgsl")),
        };
        // WGSL wants enable directives before any declaration.
        let mut source = String::from(if self.needs_shader_f16() {
            "enable f16;\n"
        } else {
            ""
        });
        source.push_str(COMMON);
        for dep in deps {
            source.push('\n');
            source.push_str(dep);
        }
        source.push('\n');
        source.push_str(body);
        source
    }
}

/// How a kernel uses one storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One compute entry point and the storage bindings it declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub shader: Shader,
    pub entry: &'static str,
    pub storage: &'static [Access],
}

use Access::{Read, ReadWrite};

/// The matmul entry points of shaders/matmul.wgsl, by the rows they suit and whether
/// the operands' widths and offsets allow vec4 loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulForm {
    /// One output per invocation: the benchmark's baseline, never chosen by `linear`.
    Simple,
    Tiled,
    TiledVec4,
    Skinny,
    SkinnyVec4,
}

impl MatmulForm {
    /// Whether the kernel loads operands as vec4 (K, and `x`'s offset and stride, multiples
    /// of 4).
    pub fn is_vec4(self) -> bool {
        matches!(self, MatmulForm::TiledVec4 | MatmulForm::SkinnyVec4)
    }

    /// Whether the kernel handles at most `SKINNY_ROWS` (8) rows.
    pub fn is_skinny(self) -> bool {
        matches!(self, MatmulForm::Skinny | MatmulForm::SkinnyVec4)
    }

    pub const ALL: [MatmulForm; 5] = [
        MatmulForm::Simple,
        MatmulForm::Tiled,
        MatmulForm::TiledVec4,
        MatmulForm::Skinny,
        MatmulForm::SkinnyVec4,
    ];
}

/// Matmul modules, one per weight encoding.
pub const MATMUL_SHADERS: [Shader; 3] =
    [Shader::Matmul, Shader::MatmulF16, Shader::MatmulF16Native];

/// The matmul kernel of `form` in `shader` (one of [`MATMUL_SHADERS`]).
pub const fn matmul_kernel(shader: Shader, form: MatmulForm) -> Kernel {
    Kernel {
        shader,
        entry: match form {
            MatmulForm::Simple => "simple_main",
            MatmulForm::Tiled => "matmul_main",
            MatmulForm::TiledVec4 => "matmul_vec4_main",
            MatmulForm::Skinny => "matvec_main",
            MatmulForm::SkinnyVec4 => "matvec_vec4_main",
        },
        // x, weights, bias, out; int8 weights add their row scales.
        storage: match shader {
            Shader::MatmulI8 => &[Read, Read, Read, ReadWrite, Read],
            _ => &[Read, Read, Read, ReadWrite],
        },
    }
}

pub const ATTENTION: Kernel = Kernel {
    shader: Shader::Attention,
    entry: "attention_main",
    storage: &[Read, Read, Read, ReadWrite, Read, Read, Read, Read],
};
pub const LAYER_NORM: Kernel = Kernel {
    shader: Shader::Norm,
    entry: "layer_norm_main",
    storage: &[Read, ReadWrite, Read, Read],
};
pub const RMS_NORM: Kernel = Kernel {
    shader: Shader::Norm,
    entry: "rms_norm_main",
    storage: &[Read, ReadWrite, Read, Read],
};
pub const SOFTMAX: Kernel = Kernel {
    shader: Shader::Softmax,
    entry: "softmax_main",
    storage: &[ReadWrite],
};
pub const ACTIVATION_KERNEL: Kernel = Kernel {
    shader: Shader::Elementwise,
    entry: "activation_main",
    storage: &[Read, ReadWrite],
};
pub const GATED: Kernel = Kernel {
    shader: Shader::Elementwise,
    entry: "gated_main",
    storage: &[Read, ReadWrite],
};
pub const ADD: Kernel = Kernel {
    shader: Shader::Elementwise,
    entry: "add_main",
    storage: &[Read, ReadWrite],
};
pub const EMBEDDING: Kernel = Kernel {
    shader: Shader::Embedding,
    entry: "embedding_main",
    storage: &[Read, Read, Read, ReadWrite],
};
pub const KV_APPEND: Kernel = Kernel {
    shader: Shader::KvCache,
    entry: "append_main",
    storage: &[Read, ReadWrite],
};
pub const ARGMAX: Kernel = Kernel {
    shader: Shader::Argmax,
    entry: "argmax_main",
    storage: &[Read, ReadWrite, Read],
};

pub const SSRU: Kernel = Kernel {
    shader: Shader::Ssru,
    entry: "ssru_main",
    storage: &[Read, ReadWrite, ReadWrite],
};

pub const GATHER: Kernel = Kernel {
    shader: Shader::Gather,
    entry: "gather_main",
    storage: &[Read, Read, ReadWrite],
};

/// Every entry point, so tests can build each pipeline once on a real device.
pub fn all_kernels() -> Vec<Kernel> {
    let mut kernels: Vec<Kernel> = MATMUL_SHADERS
        .iter()
        .flat_map(|&shader| MatmulForm::ALL.map(|form| matmul_kernel(shader, form)))
        .collect();
    kernels.extend([
        ATTENTION,
        LAYER_NORM,
        RMS_NORM,
        SOFTMAX,
        ACTIVATION_KERNEL,
        GATED,
        ADD,
        EMBEDDING,
        KV_APPEND,
        ARGMAX,
        SSRU,
        GATHER,
    ]);
    kernels
}
