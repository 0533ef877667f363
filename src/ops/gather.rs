//! Selecting rows of a weight matrix on the GPU (a shortlist's rows of the output layer).

use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, Uniform, uniform};
use crate::gpu::{Encoding, Recorder, Tensor, Workspace};

static GATHER_MODULE: Module = Module {
    name: "gather",
    sources: &[include_str!("../../shaders/gather.wgsl")],
    needs_shader_f16: false,
};

const GATHER: Kernel = Kernel {
    module: &GATHER_MODULE,
    entry: "gather_main",
    params: &GatherParams::LAYOUT,
    // ids, source rows, gathered rows
    storage: &[Read, Read, ReadWrite],
};
pub(crate) const KERNELS: &[Kernel] = &[GATHER];

uniform! {
    struct GatherParams {
        rows: u32,
        words: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

fn gather_words(
    rec: &mut Recorder,
    ids: &Tensor,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
    words: usize,
) -> Result<()> {
    let params = GatherParams {
        rows: ids.len() as u32,
        words: words as u32,
        _pad0: 0,
        _pad1: 0,
    };
    rec.dispatch(
        &GATHER,
        &params,
        &[&ids.buffer, src, dst],
        [words.div_ceil(64) as u32, ids.len() as u32, 1],
    )
}

/// Rows `ids` (u32, each below the table's rows) of a [rows, cols] matrix in any encoding,
/// as a new matrix in `ws` with the same encoding (and, for int8, the rows' scales).
pub fn gather_rows(
    rec: &mut Recorder,
    ws: &mut Workspace,
    table: &Tensor,
    ids: &Tensor,
) -> Result<Tensor> {
    let [_, cols] = table.shape[..] else {
        return Err(Error::shape(
            "gather",
            "a 2-D table",
            format!("{:?}", table.shape),
        ));
    };
    let per_word = match table.encoding {
        Encoding::F32 => 1,
        Encoding::F16 => 2,
        Encoding::Int8 { .. } => 4,
    };
    if !cols.is_multiple_of(per_word) || ids.is_empty() {
        return Err(Error::shape(
            "gather",
            format!("ids, and rows of a multiple of {per_word} values (whole 32-bit words)"),
            format!("{} ids, rows of {cols} values", ids.len()),
        ));
    }
    let words = cols / per_word;
    let rows = ids.len();
    let out = ws.tensor(&[rows, words])?;
    gather_words(rec, ids, &table.buffer, &out.buffer, words)?;
    let encoding = match &table.encoding {
        Encoding::Int8 { scales } => {
            let gathered = ws.tensor(&[rows])?;
            gather_words(rec, ids, scales, &gathered.buffer, 1)?;
            Encoding::Int8 {
                scales: gathered.buffer,
            }
        }
        other => other.clone(),
    };
    Ok(Tensor {
        buffer: out.buffer,
        shape: vec![rows, cols],
        encoding,
    })
}
