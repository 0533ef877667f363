//! Linear layers: out (+)= alpha * act(x · Wᵀ + b).

use super::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::shaders::{MatmulForm, Shader, matmul_kernel};
use crate::gpu::{Encoding, Recorder, Tensor, View};

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
}

impl Default for Epilogue {
    fn default() -> Self {
        Epilogue {
            activation: Activation::Identity,
            alpha: 1.0,
            accumulate: false,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
    activation: u32,
    alpha: f32,
    a_offset: u32,
    a_stride: u32,
    out_offset: u32,
    out_stride: u32,
    _pad: [u32; 2],
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
    let [n, k] = weight.shape[..] else {
        return Err(Error::invalid(format!(
            "linear: weight must be 2-D, got {:?}",
            weight.shape
        )));
    };
    let m = x.rows;
    if x.cols != k || out.rows != m || out.cols != n {
        return Err(Error::invalid(format!(
            "linear: x {}x{} · Wᵀ ({n}x{k}) cannot produce out {}x{}",
            x.rows, x.cols, out.rows, out.cols
        )));
    }
    if let Some(b) = bias
        && b.len() != n
    {
        return Err(Error::invalid(format!(
            "linear: bias {:?} does not match {n} outputs",
            b.shape
        )));
    }
    x.check("linear input")?;
    out.check("linear output")?;
    let params = MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        flags: u32::from(bias.is_some()) | (u32::from(epilogue.accumulate) << 1),
        activation: epilogue.activation.shader_id(),
        alpha: epilogue.alpha,
        a_offset: x.offset as u32,
        a_stride: x.stride as u32,
        out_offset: out.offset as u32,
        out_stride: out.stride as u32,
        _pad: [0; 2],
    };
    let placeholder = rec.gpu().placeholder.clone();
    let bias_buffer = bias.map_or(&placeholder, |b| &b.buffer);
    let mut buffers = vec![
        &x.tensor.buffer,
        &weight.buffer,
        bias_buffer,
        &out.tensor.buffer,
    ];
    let (shader, scales) = match &weight.encoding {
        Encoding::F32 => (Shader::Matmul, None),
        Encoding::F16 if rec.gpu().native_f16() => (Shader::MatmulF16Native, None),
        Encoding::F16 => (Shader::MatmulF16, None),
        Encoding::Int8 { scales } => (Shader::MatmulI8, Some(scales)),
    };
    buffers.extend(scales);
    // vec4 loads need every row of `x` and of the weight to start on a 16-byte boundary.
    let vec4 = [k, x.offset, x.stride].iter().all(|v| v.is_multiple_of(4));
    let skinny = m <= MATVEC_MAX_ROWS;
    let form = form.unwrap_or(match (skinny, vec4) {
        (true, false) => MatmulForm::Skinny,
        (true, true) => MatmulForm::SkinnyVec4,
        (false, false) => MatmulForm::Tiled,
        (false, true) => MatmulForm::TiledVec4,
    });
    if (form.is_vec4() && !vec4) || (form.is_skinny() && !skinny) {
        return Err(Error::invalid(format!(
            "linear: the {form:?} kernel cannot take x {m}x{k} (offset {}, stride {})",
            x.offset, x.stride
        )));
    }
    let groups = match form {
        MatmulForm::Skinny | MatmulForm::SkinnyVec4 => [n.div_ceil(4) as u32, 1, 1],
        MatmulForm::Simple => [n.div_ceil(16) as u32, m.div_ceil(16) as u32, 1],
        MatmulForm::Tiled | MatmulForm::TiledVec4 => {
            [n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1]
        }
    };
    rec.dispatch(&matmul_kernel(shader, form), &params, &buffers, groups)
}
