//! Linear layers: out (+)= alpha * act(x · Wᵀ + b), in one of five kernel forms and one of
//! four weight encodings (a WGSL module each: shaders/matmul.wgsl over a weights_*.wgsl).

use super::activation::{ACTIVATION_WGSL, shader_id};
use super::weight_reader::WeightReader;
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::{Gpu, Recorder, RowBlocks, Tensor, View};
use crate::model::spec::Activation;

const MATMUL_WGSL: &str = include_str!("../../shaders/matmul.wgsl");

/// x, weights, bias, out, the weights' row scales (int8), and the fused kernel's norm and
/// side buffer (the self-attention cache, a residual or an SSRU state; see `matvec_fused`);
/// kernels bind placeholders for what they do not use.
pub(super) const STORAGE: &[Access] = &[Read, Read, Read, ReadWrite, Read, Read, ReadWrite];

/// A static's initializer (where the source list may borrow a temporary).
macro_rules! weight_module {
    ($name:literal, $reader:expr) => {
        Module {
            name: $name,
            sources: &[ACTIVATION_WGSL, $reader.source(), MATMUL_WGSL],
            needs_shader_f16: $reader.needs_shader_f16(),
            needs_subgroups: false,
        }
    };
}

/// One module per reader, in `WeightReader::ALL` order.
pub(super) static WEIGHT_MODULES: [Module; 4] = [
    weight_module!("matmul", WeightReader::F32),
    weight_module!("matmul_f16", WeightReader::F16Packed),
    weight_module!("matmul_f16_native", WeightReader::F16Native),
    weight_module!("matmul_i8", WeightReader::Int8),
];

/// The entry points of shaders/matmul.wgsl, by the rows they suit and whether the
/// operands' widths and offsets allow vec4 loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulForm {
    /// One output per invocation: the benchmark's baseline, never chosen by `linear`.
    Simple,
    Tiled,
    TiledVec4,
    Skinny,
    SkinnyVec4,
    /// The skinny kernel with 4 lanes per column instead of 64: what CPU adapters run.
    SkinnyNarrow,
    SkinnyNarrowVec4,
}

impl MatmulForm {
    pub const ALL: [MatmulForm; 7] = [
        MatmulForm::Simple,
        MatmulForm::Tiled,
        MatmulForm::TiledVec4,
        MatmulForm::Skinny,
        MatmulForm::SkinnyVec4,
        MatmulForm::SkinnyNarrow,
        MatmulForm::SkinnyNarrowVec4,
    ];

    /// Whether the kernel loads operands as vec4 (K, and `x`'s offset and stride, multiples
    /// of 4).
    pub fn is_vec4(self) -> bool {
        matches!(
            self,
            MatmulForm::TiledVec4 | MatmulForm::SkinnyVec4 | MatmulForm::SkinnyNarrowVec4
        )
    }

    /// Whether the kernel handles at most `SKINNY_ROWS` (8) rows.
    pub fn is_skinny(self) -> bool {
        matches!(
            self,
            MatmulForm::Skinny
                | MatmulForm::SkinnyVec4
                | MatmulForm::SkinnyNarrow
                | MatmulForm::SkinnyNarrowVec4
        )
    }

    /// Output columns one workgroup computes across, of the skinny forms' 256 invocations.
    const fn skinny_columns(self) -> usize {
        match self {
            MatmulForm::SkinnyNarrow | MatmulForm::SkinnyNarrowVec4 => 64,
            _ => 4,
        }
    }

    const fn entry(self) -> &'static str {
        match self {
            MatmulForm::Simple => "simple_main",
            MatmulForm::Tiled => "matmul_main",
            MatmulForm::TiledVec4 => "matmul_vec4_main",
            MatmulForm::Skinny => "matvec_main",
            MatmulForm::SkinnyVec4 => "matvec_vec4_main",
            MatmulForm::SkinnyNarrow => "matvec_narrow_main",
            MatmulForm::SkinnyNarrowVec4 => "matvec_narrow_vec4_main",
        }
    }
}

const fn kernel(module: &'static Module, form: MatmulForm) -> Kernel {
    Kernel {
        module,
        entry: form.entry(),
        params: &MatmulParams::LAYOUT,
        params_binding: ParamsBinding::Storage,
        storage: STORAGE,
    }
}

/// Every form over every weight encoding.
pub(crate) const KERNELS: &[Kernel] = &{
    let forms = MatmulForm::ALL.len();
    let mut kernels = [kernel(&WEIGHT_MODULES[0], MatmulForm::Simple);
        WEIGHT_MODULES.len() * MatmulForm::ALL.len()];
    let mut i = 0;
    while i < kernels.len() {
        kernels[i] = kernel(&WEIGHT_MODULES[i / forms], MatmulForm::ALL[i % forms]);
        i += 1;
    }
    kernels
};

/// Up to this many rows (shaders/matmul.wgsl's SKINNY_ROWS), the skinny kernel beats a
/// 64-row tile that would sit mostly idle.
const MATVEC_MAX_ROWS: usize = 8;

#[derive(Clone, Copy, Debug)]
pub struct Epilogue {
    pub activation: Activation,
    /// Multiplies the activated result (T5's tied LM head scales by d_model^-0.5).
    pub alpha: f32,
    /// Add into the output (a residual connection) instead of overwriting it.
    pub accumulate: bool,
    /// Then cap · tanh(v / cap) (Gemma's soft-capped logits).
    pub softcap: Option<f32>,
}

impl Default for Epilogue {
    fn default() -> Self {
        Epilogue {
            activation: Activation::Identity,
            alpha: 1.0,
            accumulate: false,
            softcap: None,
        }
    }
}

uniform! {
    pub(super) struct MatmulParams {
        m: u32,
        n: u32,
        k: u32,
        pub(super) flags: u32,
        activation: u32,
        alpha: f32,
        a_offset: u32,
        a_stride: u32,
        out_offset: u32,
        out_stride: u32,
        pub(super) eps: f32,
        pub(super) split: u32,
        pub(super) cache_stride: u32,
        pub(super) rows_per_sequence: u32,
        pub(super) capacity: u32,
        softcap: f32,
        _pad1: u32,
        _pad2: u32,
    }
}

/// `x` is [m, k], `weight` is [n, k] (Hugging Face's [out_features, in_features]; f32 or
/// f16 or int8), `bias` is [n], `out` is [m, n]. Picks the fastest kernel for the shape.
pub fn linear(
    rec: &mut Recorder,
    x: View,
    weight: &Tensor,
    bias: Option<&Tensor>,
    out: View,
    epilogue: Epilogue,
) -> Result<()> {
    linear_with(rec, None, x, weight, bias, out, epilogue)
}

/// [`linear`] for a weight kept in row blocks (one larger than the binding limit): each
/// block computes its columns of `out`, with the bias block of the same rows.
pub fn linear_blocks(
    rec: &mut Recorder,
    x: View,
    weight: &RowBlocks,
    bias: Option<&RowBlocks>,
    out: View,
    epilogue: Epilogue,
) -> Result<()> {
    let rows = |blocks: &RowBlocks| blocks.parts.iter().map(|p| p.shape[0]).collect::<Vec<_>>();
    if let Some(b) = bias
        && rows(b) != rows(weight)
    {
        return Err(Error::shape(
            "linear",
            format!("bias blocks of the weight's rows {:?}", rows(weight)),
            format!("{:?}", rows(b)),
        ));
    }
    if out.cols != weight.shape[0] {
        return Err(Error::shape(
            "linear",
            format!(
                "out of {} columns for a weight of {:?}",
                weight.shape[0], weight.shape
            ),
            format!("out {}x{}", out.rows, out.cols),
        ));
    }
    for (i, (first, part)) in weight.blocks().enumerate() {
        let columns = out.columns(first, part.shape[0]);
        let bias = bias.map(|b| &b.parts[i]);
        linear_with(rec, None, x, part, bias, columns, epilogue)?;
    }
    Ok(())
}

/// [`linear`] with the kernel chosen by the caller (benchmarks and tests compare them);
/// `None` picks as `linear` does. A form the shape does not allow is an error.
pub fn linear_with(
    rec: &mut Recorder,
    form: Option<MatmulForm>,
    x: View,
    weight: &Tensor,
    bias: Option<&Tensor>,
    out: View,
    epilogue: Epilogue,
) -> Result<()> {
    let n = weight.shape.first().copied().unwrap_or(0);
    let params = checked_params(x, weight, bias, out, n, epilogue)?;
    let (m, k) = (x.rows, x.cols);
    let vec4 = is_vec4(x);
    let skinny = m <= MATVEC_MAX_ROWS;
    // CPU adapters pay per workgroup and barrier, GPUs per memory transaction.
    let narrow = rec.gpu().is_software();
    let form = form.unwrap_or(match (skinny, vec4, narrow) {
        (true, false, false) => MatmulForm::Skinny,
        (true, true, false) => MatmulForm::SkinnyVec4,
        (true, false, true) => MatmulForm::SkinnyNarrow,
        (true, true, true) => MatmulForm::SkinnyNarrowVec4,
        (false, false, _) => MatmulForm::Tiled,
        (false, true, _) => MatmulForm::TiledVec4,
    });
    if (form.is_vec4() && !vec4) || (form.is_skinny() && !skinny) {
        return Err(Error::shape(
            "linear",
            format!("an x the {form:?} kernel takes"),
            format!("x {m}x{k} (offset {}, stride {})", x.offset, x.stride),
        ));
    }
    let groups = match form {
        MatmulForm::Skinny
        | MatmulForm::SkinnyVec4
        | MatmulForm::SkinnyNarrow
        | MatmulForm::SkinnyNarrowVec4 => [n.div_ceil(form.skinny_columns()) as u32, 1, 1],
        MatmulForm::Simple => [n.div_ceil(16) as u32, m.div_ceil(16) as u32, 1],
        MatmulForm::Tiled | MatmulForm::TiledVec4 => {
            [n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1]
        }
    };
    let (reader, buffers) = bindings(rec.gpu(), x, weight, bias, out);
    let kernel = kernel(&WEIGHT_MODULES[reader.index()], form);
    rec.dispatch(&kernel, &params, &buffers, groups)
}

/// Whether the kernels may load `x` as vec4: every row of it and of the weight starts on a
/// 16-byte boundary.
pub(super) fn is_vec4(x: View) -> bool {
    [x.cols, x.offset, x.stride]
        .iter()
        .all(|v| v.is_multiple_of(4))
}

/// Checks `x` [m, k], a weight [rows, k] with its bias [rows], and `out` [m, n], and returns
/// the kernel parameters for them (no fusion).
pub(super) fn checked_params(
    x: View,
    weight: &Tensor,
    bias: Option<&Tensor>,
    out: View,
    n: usize,
    epilogue: Epilogue,
) -> Result<MatmulParams> {
    let [rows, k] = weight.shape[..] else {
        return Err(Error::shape(
            "linear",
            "a 2-D weight",
            format!("{:?}", weight.shape),
        ));
    };
    let m = x.rows;
    if x.cols != k || out.rows != m || out.cols != n {
        return Err(Error::shape(
            "linear",
            format!("x {m}x{k} and out {m}x{n} for a weight of {rows}x{k}"),
            format!("x {}x{} and out {}x{}", x.rows, x.cols, out.rows, out.cols),
        ));
    }
    if let Some(b) = bias
        && b.len() != rows
    {
        return Err(Error::shape(
            "linear",
            format!("a bias of {rows} outputs"),
            format!("{:?}", b.shape),
        ));
    }
    x.check("linear input")?;
    out.check("linear output")?;
    Ok(MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        flags: u32::from(bias.is_some()) | (u32::from(epilogue.accumulate) << 1),
        activation: shader_id(epilogue.activation),
        alpha: epilogue.alpha,
        a_offset: x.offset as u32,
        a_stride: x.stride as u32,
        out_offset: out.offset as u32,
        out_stride: out.stride as u32,
        eps: 0.0,
        split: 0,
        cache_stride: 0,
        rows_per_sequence: 1,
        capacity: 0,
        softcap: epilogue.softcap.unwrap_or(0.0),
        _pad1: 0,
        _pad2: 0,
    })
}

/// The reader of this weight's encoding, and the buffers of [`STORAGE`] with placeholders
/// for the fused kernel's norm and side buffer.
pub(super) fn bindings<'b>(
    gpu: &'b Gpu,
    x: View<'b>,
    weight: &'b Tensor,
    bias: Option<&'b Tensor>,
    out: View<'b>,
) -> (WeightReader, [&'b wgpu::Buffer; 7]) {
    let (reader, scales) = WeightReader::choose(&weight.encoding, gpu.native_f16());
    let read = &gpu.placeholder;
    let buffers = [
        &x.tensor.buffer,
        &weight.buffer,
        bias.map_or(read, |b| &b.buffer),
        &out.tensor.buffer,
        scales.unwrap_or(read),
        read,
        &gpu.write_placeholder,
    ];
    (reader, buffers)
}
