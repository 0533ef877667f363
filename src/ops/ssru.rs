//! One step of an SSRU decoder cell (Marian's "tiny" models), after its fused projection.

use crate::error::{Error, Result};
use crate::gpu::kernel::{Access::*, Kernel, Module, ParamsBinding, Uniform, uniform};
use crate::gpu::{Recorder, Tensor};

static SSRU_MODULE: Module = Module {
    name: "ssru",
    sources: &[include_str!("../../shaders/ssru.wgsl")],
    needs_shader_f16: false,
    needs_subgroups: false,
};

const SSRU: Kernel = Kernel {
    module: &SSRU_MODULE,
    entry: "ssru_main",
    params: &SsruParams::LAYOUT,
    params_binding: ParamsBinding::Storage,
    // gates, state, hidden
    storage: &[Read, ReadWrite, ReadWrite],
};
pub(crate) const KERNELS: &[Kernel] = &[SSRU];

uniform! {
    struct SsruParams {
        sequences: u32,
        tokens: u32,
        dim: u32,
        _pad: u32,
    }
}

/// `gates` [sequences * tokens, 2 * dim] holds x·W then x·Wf + bf for each row; `state`
/// [sequences, dim] carries c between steps (reset at decode position 0); `hidden`
/// [sequences * tokens, dim] is x on entry and relu(c) + x on exit.
pub fn ssru(
    rec: &mut Recorder,
    gates: &Tensor,
    state: &Tensor,
    hidden: &Tensor,
    tokens: usize,
) -> Result<()> {
    let [sequences, dim] = state.shape[..] else {
        return Err(Error::shape(
            "ssru",
            "a 2-D state",
            format!("{:?}", state.shape),
        ));
    };
    let rows = sequences * tokens;
    if tokens == 0 || gates.len() != rows * 2 * dim || hidden.len() != rows * dim {
        return Err(Error::shape(
            "ssru",
            format!(
                "gates [{rows}, {}] and hidden [{rows}, {dim}] ({sequences} sequences of {tokens} tokens)",
                2 * dim
            ),
            format!("gates {:?}, hidden {:?}", gates.shape, hidden.shape),
        ));
    }
    let params = SsruParams {
        sequences: sequences as u32,
        tokens: tokens as u32,
        dim: dim as u32,
        _pad: 0,
    };
    rec.dispatch(
        &SSRU,
        &params,
        &[&gates.buffer, &state.buffer, &hidden.buffer],
        [(sequences * dim).div_ceil(64) as u32, 1, 1],
    )
}
