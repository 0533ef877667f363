//! The skinny decode matmul with its neighbours folded in (`matvec_fused_main` in
//! shaders/matmul.wgsl): a norm of its input rows, the self-attention cache append of its
//! key and value columns, a gated activation, a post-norm residual normalised as it is read,
//! an SSRU cell, and the first stage of a greedy argmax over its outputs. Each would
//! otherwise be a dispatch of its own and a trip of the rows through memory, and a decode
//! step is made of few-row matmuls.

use super::kv_cache::Pages;
use super::matmul::{Epilogue, MatmulParams, STORAGE, WEIGHT_MODULES, bindings, checked_params};
use super::norm::Norm;
use crate::error::{Error, Result};
use crate::gpu::kernel::{Kernel, Module, ParamsBinding, Uniform};
use crate::gpu::{Recorder, RowBlocks, Tensor, View};
use crate::model::spec::{Activation, NormKind};

const fn kernel(module: &'static Module) -> Kernel {
    Kernel {
        module,
        entry: "matvec_fused_main",
        params: &MatmulParams::LAYOUT,
        params_binding: ParamsBinding::Storage,
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

const FLAG_RMS: u32 = 4;
const FLAG_LAYER_NORM: u32 = 8;
const FLAG_APPEND: u32 = 16;
const FLAG_GATED: u32 = 32;
const FLAG_SIDE_RESIDUAL: u32 = 64;
const FLAG_SSRU: u32 = 128;
const FLAG_ARGMAX: u32 = 256;

/// Output columns per workgroup of the unpaired kernel.
const COLUMNS_PER_WORKGROUP: usize = 4;

/// Output columns from `split` on are keys and values for the cache ([sequences * capacity,
/// width]), at the rows after the tokens each sequence holds; or with `pages`, for a pool of
/// blocks that a table per sequence names (only the separate append, `ops::kv_cache`, takes
/// those: the fused kernel has no binding left for the table).
#[derive(Clone, Copy, Debug)]
pub struct CacheAppend<'t> {
    pub cache: &'t Tensor,
    pub split: usize,
    pub rows_per_sequence: usize,
    pub capacity: usize,
    pub pages: Option<Pages<'t>>,
}

/// The residual a post-norm sublayer's output projection adds: the stream `[rows, n]`
/// before its last sublayer's norm, which the kernel applies as it reads it. `out` must be
/// another buffer (every workgroup reads the stream's rows whole).
#[derive(Clone, Copy, Debug)]
pub struct Residual<'t> {
    pub stream: &'t Tensor,
    pub norm: Option<&'t Norm>,
}

/// What one fused dispatch does besides out = act(x · Wᵀ + b). The kernel has one norm
/// binding (the input's or the residual's) and one side buffer (the cache, the residual or
/// the SSRU state), so each fusion of a kind excludes the others of that kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fusion<'t> {
    /// A norm of the input rows.
    pub norm: Option<&'t Norm>,
    pub append: Option<CacheAppend<'t>>,
    /// The weight is [2 * n, k], gate rows then linear rows, and out[:, c] = act(gate_c) *
    /// linear_c: the epilogue's activation applies to the gate.
    pub gated: bool,
    /// out = value + the stream, normalised: a post-norm residual (instead of accumulating).
    pub residual: Option<Residual<'t>>,
    /// An SSRU cell with its state [rows, n] (one token per sequence): the weight is [2 * n,
    /// n], candidate rows then forget-gate rows, and out = relu(c) + the (normalised) input.
    pub ssru: Option<&'t Tensor>,
    /// The first stage of an argmax over the outputs, instead of writing them: each
    /// workgroup's best column per row into these partials ([`argmax_partials_shape`]),
    /// which [`argmax_partials`](super::argmax_partials) finishes.
    pub argmax: Option<&'t Tensor>,
}

/// The shape of the argmax partials of `rows` rows of `n` outputs: one (value, column)
/// pair per row per workgroup.
pub fn argmax_partials_shape(rows: usize, n: usize) -> [usize; 3] {
    [rows, n.div_ceil(COLUMNS_PER_WORKGROUP), 2]
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
    let paired = fusion.gated || fusion.ssru.is_some();
    let rows = weight.shape.first().copied().unwrap_or(0);
    let n = if paired { rows / 2 } else { rows };
    if paired && !rows.is_multiple_of(2) {
        return Err(Error::shape(
            "paired linear",
            "a weight of two halves, 2 * n rows",
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
    check_exclusive(&fusion, epilogue)?;
    let gpu = rec.gpu();
    let (reader, mut buffers) = bindings(gpu, x, weight, bias, out);
    if fusion.gated {
        params.flags |= FLAG_GATED;
    }
    let norm = fusion.norm.or(fusion.residual.and_then(|r| r.norm));
    if let Some(norm) = norm {
        params.eps = norm.eps;
        params.flags |= match norm.kind {
            NormKind::RmsNorm => FLAG_RMS,
            NormKind::LayerNorm => FLAG_LAYER_NORM,
        };
        buffers[5] = &norm.values.buffer;
    }
    if let Some(norm) = fusion.norm {
        norm.check_rows("fused linear input norm", x.cols)?;
    }
    if let Some(append) = fusion.append {
        check_append(&append, x.rows, n)?;
        params.flags |= FLAG_APPEND;
        params.split = append.split as u32;
        params.cache_stride = append.cache.shape[1] as u32;
        params.rows_per_sequence = append.rows_per_sequence as u32;
        params.capacity = append.capacity as u32;
        buffers[6] = &append.cache.buffer;
    }
    if let Some(residual) = fusion.residual {
        check_side("residual stream", residual.stream, out, x.rows, n)?;
        if let Some(norm) = residual.norm {
            norm.check_rows("fused linear residual norm", n)?;
        }
        params.flags |= FLAG_SIDE_RESIDUAL;
        buffers[6] = &residual.stream.buffer;
    }
    if let Some(state) = fusion.ssru {
        check_side("ssru state", state, out, x.rows, n)?;
        if x.cols != n {
            return Err(Error::shape(
                "ssru",
                format!("an input of the cell's {n} values"),
                format!("{} values", x.cols),
            ));
        }
        params.flags |= FLAG_SSRU;
        buffers[6] = &state.buffer;
    }
    if let Some(partials) = fusion.argmax {
        let shape = argmax_partials_shape(x.rows, n);
        if partials.shape[..] != shape {
            return Err(Error::shape(
                "argmax partials",
                format!("{shape:?}"),
                format!("{:?}", partials.shape),
            ));
        }
        params.flags |= FLAG_ARGMAX;
        buffers[6] = &partials.buffer;
    }
    let columns_per_group = if paired { 2 } else { COLUMNS_PER_WORKGROUP };
    let groups = [n.div_ceil(columns_per_group) as u32, 1, 1];
    rec.dispatch(&KERNELS[reader.index()], &params, &buffers, groups)
}

/// One norm binding and one side buffer: refuses fusions that would need two of either.
fn check_exclusive(fusion: &Fusion, epilogue: Epilogue) -> Result<()> {
    let sides = [
        fusion.append.is_some(),
        fusion.residual.is_some(),
        fusion.ssru.is_some(),
        fusion.argmax.is_some(),
    ];
    let plain_epilogue = epilogue.activation == Activation::Identity
        && epilogue.alpha == 1.0
        && epilogue.softcap.is_none();
    let clash = if sides.iter().filter(|&&s| s).count() > 1 {
        Some("more than one of a cache append, a residual, an SSRU state and an argmax")
    } else if fusion.residual.is_some() && (fusion.norm.is_some() || fusion.gated) {
        // The kernel's one norm then describes the residual rows, and a paired layout
        // writes no residual.
        Some("a residual with an input norm or a gated activation")
    } else if fusion.ssru.is_some() && !plain_epilogue {
        Some("an SSRU cell and an activation, scale or soft cap (the cell has its own)")
    } else if fusion.gated && (fusion.ssru.is_some() || fusion.argmax.is_some()) {
        Some("a gated activation and an SSRU cell or an argmax")
    } else if epilogue.softcap.is_some() && (fusion.gated || fusion.ssru.is_some()) {
        Some("a soft cap and a paired layout")
    } else if epilogue.accumulate && (sides[1] || sides[2] || sides[3]) {
        Some("accumulation and an output it does not write")
    } else {
        None
    };
    match clash {
        Some(what) => Err(Error::invalid(format!(
            "fused linear: {what} in one dispatch"
        ))),
        None => Ok(()),
    }
}

/// A side buffer of `rows` rows of the `n` output columns, in a buffer other than `out`'s.
fn check_side(what: &'static str, side: &Tensor, out: View, rows: usize, n: usize) -> Result<()> {
    if side.shape[..] != [rows, n] {
        return Err(Error::shape(
            what,
            format!("[{rows}, {n}]"),
            format!("{:?}", side.shape),
        ));
    }
    if side.buffer == out.tensor.buffer {
        return Err(Error::invalid(format!(
            "fused linear: the {what} must be another buffer than the output"
        )));
    }
    Ok(())
}

fn check_append(append: &CacheAppend, rows: usize, n: usize) -> Result<()> {
    if append.pages.is_some() {
        return Err(Error::shape(
            "kv append",
            "a cache of whole sequences (a paged cache takes the separate append)",
            "a paged cache",
        ));
    }
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
