//! The attention kernels' modules (shaders/attention*.wgsl), one per form, reduction and
//! source of queries (given, or projected over each weight reader), and their parameters.

use super::weight_reader::WeightReader;
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};

const PARAMS_WGSL: &str = include_str!("../../shaders/attention_params.wgsl");
const ATTENTION_WGSL: &str = include_str!("../../shaders/attention.wgsl");
const GIVEN_WGSL: &str = include_str!("../../shaders/attention_io.wgsl");
const SHARED_WGSL: &str = include_str!("../../shaders/lanes_shared.wgsl");
const SUBGROUPS_WGSL: &str = include_str!("../../shaders/lanes_subgroups.wgsl");
const ALONG_HEAD_DIM: &str = "const DOT_LANES: u32 = 16u;";
const KEY_PER_LANE: &str = "const DOT_LANES: u32 = 1u;";

const PROJECTED_WGSL: &str = include_str!("../../shaders/attention_projected.wgsl");

/// A static's initializer: the attention module of one form with one kind of reduction,
/// over Q, K and V as given.
macro_rules! attention_module {
    ($name:literal, $form:expr, $lanes:expr, $subgroups:expr) => {
        Module {
            name: $name,
            sources: &[PARAMS_WGSL, $lanes, $form, GIVEN_WGSL, ATTENTION_WGSL],
            needs_shader_f16: false,
            needs_subgroups: $subgroups,
        }
    };
}

/// By form (`AttentionForm` order), then without and with subgroup reductions.
pub(super) static ATTENTION_MODULES: [[Module; 2]; 2] = [
    [
        attention_module!("attention", ALONG_HEAD_DIM, SHARED_WGSL, false),
        attention_module!("attention_subgroups", ALONG_HEAD_DIM, SUBGROUPS_WGSL, true),
    ],
    [
        attention_module!("attention_key_per_lane", KEY_PER_LANE, SHARED_WGSL, false),
        attention_module!(
            "attention_key_per_lane_subgroups",
            KEY_PER_LANE,
            SUBGROUPS_WGSL,
            true
        ),
    ],
];

static COMBINE_MODULE: Module = Module {
    name: "attention_combine",
    sources: &[
        PARAMS_WGSL,
        include_str!("../../shaders/attention_combine.wgsl"),
    ],
    needs_shader_f16: false,
    needs_subgroups: false,
};

pub(super) const fn attention_kernel(module: &'static Module) -> Kernel {
    Kernel {
        module,
        entry: "attention_main",
        params: &AttentionParams::LAYOUT,
        params_binding: ParamsBinding::Storage,
        // q, keys and values, out (or split records), bias buckets, bias table, key mask,
        // row table
        storage: &[Read, Read, ReadWrite, Read, Read, Read, Read],
    }
}

pub(super) const COMBINE: Kernel = Kernel {
    module: &COMBINE_MODULE,
    entry: "attention_combine_main",
    params: &AttentionParams::LAYOUT,
    params_binding: ParamsBinding::Storage,
    // split records, out
    storage: &[Read, ReadWrite],
};

pub(crate) const KERNELS: &[Kernel] = &{
    let mut kernels = [COMBINE; 21];
    let mut i = 0;
    while i < 4 {
        kernels[i] = attention_kernel(&ATTENTION_MODULES[i / 2][i % 2]);
        let mut reader = 0;
        while reader < 4 {
            let module = &PROJECTED_MODULES[reader][i / 2][i % 2];
            kernels[4 + reader * 4 + i] = projected_kernel(module);
            reader += 1;
        }
        i += 1;
    }
    kernels
};

/// The attention module that projects its own queries, over the weights of one reader.
macro_rules! projected_module {
    ($name:literal, $reader:expr, $form:expr, $lanes:expr, $subgroups:expr) => {
        Module {
            name: $name,
            sources: &[
                PARAMS_WGSL,
                $lanes,
                $form,
                $reader.source(),
                PROJECTED_WGSL,
                ATTENTION_WGSL,
            ],
            needs_shader_f16: $reader.needs_shader_f16(),
            needs_subgroups: $subgroups,
        }
    };
}

/// The four modules of one weight reader: by form, then without and with subgroups.
macro_rules! projected_modules {
    ($reader:expr, $a:literal, $b:literal, $c:literal, $d:literal) => {
        [
            [
                projected_module!($a, $reader, ALONG_HEAD_DIM, SHARED_WGSL, false),
                projected_module!($b, $reader, ALONG_HEAD_DIM, SUBGROUPS_WGSL, true),
            ],
            [
                projected_module!($c, $reader, KEY_PER_LANE, SHARED_WGSL, false),
                projected_module!($d, $reader, KEY_PER_LANE, SUBGROUPS_WGSL, true),
            ],
        ]
    };
}

/// By weight reader (`WeightReader::ALL` order), then as `ATTENTION_MODULES`.
pub(super) static PROJECTED_MODULES: [[[Module; 2]; 2]; 4] = [
    projected_modules!(
        WeightReader::F32,
        "attention_projected",
        "attention_projected_subgroups",
        "attention_projected_key_per_lane",
        "attention_projected_key_per_lane_subgroups"
    ),
    projected_modules!(
        WeightReader::F16Packed,
        "attention_projected_f16",
        "attention_projected_f16_subgroups",
        "attention_projected_f16_key_per_lane",
        "attention_projected_f16_key_per_lane_subgroups"
    ),
    projected_modules!(
        WeightReader::F16Native,
        "attention_projected_f16_native",
        "attention_projected_f16_native_subgroups",
        "attention_projected_f16_native_key_per_lane",
        "attention_projected_f16_native_key_per_lane_subgroups"
    ),
    projected_modules!(
        WeightReader::Int8,
        "attention_projected_i8",
        "attention_projected_i8_subgroups",
        "attention_projected_i8_key_per_lane",
        "attention_projected_i8_key_per_lane_subgroups"
    ),
];

pub(super) const fn projected_kernel(module: &'static Module) -> Kernel {
    Kernel {
        module,
        entry: "attention_main",
        params: &AttentionParams::LAYOUT,
        params_binding: ParamsBinding::Uniform,
        // input rows, query weight, query bias, out (or split records), weight scales,
        // norm, keys and values, key mask
        storage: &[Read, Read, Read, ReadWrite, Read, Read, Read, Read],
    }
}

uniform! {
    pub(super) struct AttentionParams {
        pub(super) q_rows: u32,
        pub(super) kv_len: u32,
        pub(super) heads: u32,
        pub(super) head_dim: u32,
        pub(super) q_offset: u32,
        pub(super) q_stride: u32,
        pub(super) q_batch_stride: u32,
        pub(super) k_offset: u32,
        pub(super) k_stride: u32,
        pub(super) k_batch_stride: u32,
        pub(super) v_offset: u32,
        pub(super) v_stride: u32,
        pub(super) v_batch_stride: u32,
        pub(super) out_stride: u32,
        pub(super) out_batch_stride: u32,
        pub(super) flags: u32,
        pub(super) scale: f32,
        pub(super) bias_center: u32,
        pub(super) mask_stride: u32,
        pub(super) kv_group: u32,
        pub(super) table_stride: u32,
        pub(super) splits: u32,
        pub(super) model_dim: u32,
        pub(super) eps: f32,
        pub(super) head_group: u32,
        pub(super) window: u32,
        pub(super) softcap: f32,
        pub(super) cache_rows: u32,
        pub(super) block_rows: u32,
    }
}
