//! The skinny decode matmul with its neighbours folded in (`matvec_fused_main` in
//! shaders/matmul.wgsl): a norm of its input rows, the self-attention cache append of its
//! key and value columns, and a gated activation. Each would otherwise be a dispatch of its
//! own and a trip of the rows through memory, and a decode step is made of few-row matmuls.

use super::matmul::{Epilogue, MatmulParams, STORAGE, WEIGHT_MODULES, bindings, checked_params};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Kernel, Module, Uniform};
use crate::gpu::{Recorder, RowBlocks, Tensor, View};
use crate::model::spec::NormKind;

const fn kernel(module: &'static Module) -> Kernel {
    Kernel {
        module,
        entry: "matvec_fused_main",
        params: &MatmulParams::LAYOUT,
        storage: STORAGE,
    }
}

/// Over every weight reader, in `WeightReader::ALL` order.
pub(crate) const KERNELS: &[Kernel] = &[
    kernel(&WEIGHT_MODULES[0]),
    kernel(&WEIGHT_MODULES[1]),
    kernel(&WEIGHT_MODULES[2]),
    kernel(&WEIGHT_MODULES[3]),
];

/// The most rows the kernel takes (shaders/matmul.wgsl's SKINNY_ROWS).
const MAX_ROWS: usize = 8;

const FLAG_RMS_INPUT: u32 = 4;
const FLAG_LAYER_NORM_INPUT: u32 = 8;
const FLAG_APPEND: u32 = 16;
const FLAG_GATED: u32 = 32;

/// A norm of each input row, applied as the kernel reads it.
#[derive(Clone, Copy, Debug)]
pub struct InputNorm<'t> {
    pub kind: NormKind,
    pub weight: &'t Tensor,
    /// LayerNorm's; RMSNorm has none.
    pub bias: Option<&'t Tensor>,
    pub eps: f32,
}

/// Output columns from `split` on are keys and values for the cache ([sequences * capacity,
/// width]), at the rows after the `step.pos` tokens each sequence holds.
#[derive(Clone, Copy, Debug)]
pub struct CacheAppend<'t> {
    pub cache: &'t Tensor,
    pub split: usize,
    pub rows_per_sequence: usize,
    pub capacity: usize,
}

/// What one fused dispatch does besides out = act(x · Wᵀ + b).
#[derive(Clone, Copy, Debug, Default)]
pub struct Fusion<'t> {
    pub norm: Option<InputNorm<'t>>,
    pub append: Option<CacheAppend<'t>>,
    /// The weight is [2 * n, k], gate rows then linear rows, and out[:, c] = act(gate_c) *
    /// linear_c: the epilogue's activation applies to the gate.
    pub gated: bool,
}

/// Whether the fused kernel takes `x` with this weight: at most 8 rows, loaded as vec4,
/// and a weight in one block (a split weight runs as separate dispatches).
pub fn fusable(x: View, weight: &RowBlocks) -> bool {
    x.rows <= MAX_ROWS && super::matmul::is_vec4(x) && weight.parts.len() == 1
}

/// out (+)= alpha * act(norm(x) · Wᵀ + b) with `fusion`'s additions, in one dispatch. An
/// input [`fusable`] refuses is an error.
pub fn linear_fused(
    rec: &mut Recorder,
    x: View,
    weight: &Tensor,
    bias: Option<&Tensor>,
    out: View,
    epilogue: Epilogue,
    fusion: Fusion,
) -> Result<()> {
    let rows = weight.shape.first().copied().unwrap_or(0);
    let n = if fusion.gated { rows / 2 } else { rows };
    if fusion.gated && !rows.is_multiple_of(2) {
        return Err(Error::shape(
            "gated linear",
            "a weight of gate and linear rows, 2 * n",
            format!("{:?}", weight.shape),
        ));
    }
    let mut params = checked_params(x, weight, bias, out, n, epilogue)?;
    if x.rows > MAX_ROWS || !super::matmul::is_vec4(x) {
        return Err(Error::shape(
            "fused linear",
            format!("at most {MAX_ROWS} rows, with widths, offset and stride multiples of 4"),
            format!(
                "x {}x{} (offset {}, stride {})",
                x.rows, x.cols, x.offset, x.stride
            ),
        ));
    }
    if fusion.gated {
        params.flags |= FLAG_GATED;
    }
    let gpu = rec.gpu();
    let (reader, mut buffers) = bindings(gpu, x, weight, bias, out);
    if let Some(norm) = fusion.norm {
        check_norm(&norm, x.cols)?;
        params.eps = norm.eps;
        params.flags |= match norm.kind {
            NormKind::RmsNorm => FLAG_RMS_INPUT,
            NormKind::LayerNorm => FLAG_LAYER_NORM_INPUT,
        };
        buffers[5] = &norm.weight.buffer;
        if let Some(bias) = norm.bias {
            buffers[6] = &bias.buffer;
        }
    }
    if let Some(append) = fusion.append {
        check_append(&append, x.rows, n)?;
        params.flags |= FLAG_APPEND;
        params.split = append.split as u32;
        params.cache_stride = append.cache.shape[1] as u32;
        params.rows_per_sequence = append.rows_per_sequence as u32;
        params.capacity = append.capacity as u32;
        buffers[7] = &append.cache.buffer;
    }
    let columns_per_group = if fusion.gated { 2 } else { 4 };
    let groups = [n.div_ceil(columns_per_group) as u32, 1, 1];
    rec.dispatch(&KERNELS[reader.index()], &params, &buffers, groups)
}

fn check_norm(norm: &InputNorm, k: usize) -> Result<()> {
    if norm.weight.len() != k {
        return Err(Error::shape(
            "input norm",
            format!("a weight of the input's {k} values"),
            format!("{:?}", norm.weight.shape),
        ));
    }
    match (norm.kind, norm.bias) {
        (NormKind::LayerNorm, Some(b)) if b.len() == k => Ok(()),
        (NormKind::LayerNorm, found) => Err(Error::shape(
            "input layer norm",
            format!("a bias of {k} values"),
            found.map_or("none".into(), |b| format!("{:?}", b.shape)),
        )),
        (NormKind::RmsNorm, _) => Ok(()),
    }
}

fn check_append(append: &CacheAppend, rows: usize, n: usize) -> Result<()> {
    if append.split > n {
        return Err(Error::shape(
            "kv append",
            format!("a split within the {n} output columns"),
            format!("split at {}", append.split),
        ));
    }
    let (cache, capacity) = (append.cache, append.capacity);
    super::kv_cache::check_layout(
        rows,
        n - append.split,
        cache,
        append.rows_per_sequence,
        capacity,
    )
}
