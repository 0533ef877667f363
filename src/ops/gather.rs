//! Selecting rows of a weight matrix on the GPU (a shortlist's rows of the output layer).

use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::{Encoding, Recorder, RowBlocks, Tensor, Workspace};

static GATHER_MODULE: Module = Module {
    name: "gather",
    sources: &[include_str!("../../shaders/gather.wgsl")],
    needs_shader_f16: false,
    needs_subgroups: false,
};

const GATHER: Kernel = Kernel {
    module: &GATHER_MODULE,
    entry: "gather_main",
    params: &GatherParams::LAYOUT,
    params_binding: ParamsBinding::Storage,
    // ids, source rows, gathered rows
    storage: &[Read, Read, ReadWrite],
};
pub(crate) const KERNELS: &[Kernel] = &[GATHER];

uniform! {
    struct GatherParams {
        rows: u32,
        words: u32,
        first: u32,
        block_rows: u32,
    }
}

/// Copies the rows of `ids` that lie in `src`, rows `first..first + block_rows` of the table.
fn gather_words(
    rec: &mut Recorder,
    ids: &Tensor,
    (src, first, block_rows): (&wgpu::Buffer, usize, usize),
    dst: &wgpu::Buffer,
    words: usize,
) -> Result<()> {
    let params = GatherParams {
        rows: ids.len() as u32,
        words: words as u32,
        first: first as u32,
        block_rows: block_rows as u32,
    };
    rec.dispatch(
        &GATHER,
        &params,
        &[&ids.buffer, src, dst],
        [words.div_ceil(64) as u32, ids.len() as u32, 1],
    )
}

/// Rows `ids` (u32, each below the table's rows) of a [rows, cols] matrix in any encoding
/// (in row blocks or not), as a new matrix in `ws` with the same encoding (and, for int8,
/// the rows' scales).
pub fn gather_rows(
    rec: &mut Recorder,
    ws: &mut Workspace,
    table: &RowBlocks,
    ids: &Tensor,
) -> Result<Tensor> {
    let [_, cols] = table.shape[..] else {
        return Err(Error::shape(
            "gather",
            "a 2-D table",
            format!("{:?}", table.shape),
        ));
    };
    let per_word = match table.encoding() {
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
    let scales = match table.encoding() {
        Encoding::Int8 { .. } => Some(ws.tensor(&[rows])?),
        _ => None,
    };
    for (first, part) in table.blocks() {
        let block_rows = part.shape[0];
        gather_words(
            rec,
            ids,
            (&part.buffer, first, block_rows),
            &out.buffer,
            words,
        )?;
        if let (Some(gathered), Encoding::Int8 { scales }) = (&scales, &part.encoding) {
            gather_words(rec, ids, (scales, first, block_rows), &gathered.buffer, 1)?;
        }
    }
    let encoding = match scales {
        Some(gathered) => Encoding::Int8 {
            scales: gathered.buffer,
        },
        None => table.encoding().clone(),
    };
    Ok(Tensor {
        buffer: out.buffer,
        shape: vec![rows, cols],
        encoding,
    })
}
