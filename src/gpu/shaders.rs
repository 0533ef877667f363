//! The WGSL kernels of `shaders/`, composed into modules, and the binding layout of each
//! entry point. Binding 0 is always the kernel's uniform parameters and binding 1 the decode
//! step; storage buffers follow from binding 2 in the order listed here.

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const ACTIVATION: &str = include_str!("../../shaders/activation.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const WEIGHTS_F32: &str = include_str!("../../shaders/weights_f32.wgsl");
const WEIGHTS_F16: &str = include_str!("../../shaders/weights_f16.wgsl");
const MATMUL_BODY: &str = include_str!("../../shaders/matmul.wgsl");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Matmul,
    /// The matmul kernels over f16 weights packed two per u32.
    MatmulF16,
    Attention,
    Norm,
    Softmax,
    Elementwise,
    Embedding,
    KvCache,
    Argmax,
}

impl Shader {
    pub const ALL: [Shader; 9] = [
        Shader::Matmul,
        Shader::MatmulF16,
        Shader::Attention,
        Shader::Norm,
        Shader::Softmax,
        Shader::Elementwise,
        Shader::Embedding,
        Shader::KvCache,
        Shader::Argmax,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul",
            Shader::MatmulF16 => "matmul_f16",
            Shader::Attention => "attention",
            Shader::Norm => "norm",
            Shader::Softmax => "softmax",
            Shader::Elementwise => "elementwise",
            Shader::Embedding => "embedding",
            Shader::KvCache => "kv_cache",
            Shader::Argmax => "argmax",
        }
    }

    /// The complete module source: shared pieces first, then the kernel file.
    pub fn source(self) -> String {
        let (deps, body): (&[&str], &str) = match self {
            Shader::Matmul => (&[ACTIVATION, WEIGHTS_F32], MATMUL_BODY),
            Shader::MatmulF16 => (&[ACTIVATION, WEIGHTS_F16], MATMUL_BODY),
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
        };
        let mut source = String::from(COMMON);
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

pub const MATMUL: Kernel = Kernel {
    shader: Shader::Matmul,
    entry: "matmul_main",
    storage: &[Read, Read, Read, ReadWrite],
};
pub const MATVEC: Kernel = Kernel {
    shader: Shader::Matmul,
    entry: "matvec_main",
    storage: &[Read, Read, Read, ReadWrite],
};
pub const MATMUL_F16: Kernel = Kernel {
    shader: Shader::MatmulF16,
    entry: "matmul_main",
    storage: &[Read, Read, Read, ReadWrite],
};
pub const MATVEC_F16: Kernel = Kernel {
    shader: Shader::MatmulF16,
    entry: "matvec_main",
    storage: &[Read, Read, Read, ReadWrite],
};
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
    storage: &[Read, ReadWrite],
};

/// Every entry point, so tests can build each pipeline once on a real device.
pub const ALL_KERNELS: [Kernel; 14] = [
    MATMUL,
    MATVEC,
    MATMUL_F16,
    MATVEC_F16,
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
];
