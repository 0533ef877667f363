//! One step of an SSRU decoder cell (Marian's "tiny" models), after its fused projection.

use crate::error::{Error, Result};
use crate::gpu::shaders::SSRU;
use crate::gpu::{Recorder, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SsruParams {
    sequences: u32,
    tokens: u32,
    dim: u32,
    _pad: u32,
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
        return Err(Error::invalid(format!(
            "ssru: state must be 2-D, got {:?}",
            state.shape
        )));
    };
    let rows = sequences * tokens;
    if tokens == 0 || gates.len() != rows * 2 * dim || hidden.len() != rows * dim {
        return Err(Error::invalid(format!(
            "ssru: gates {:?} and hidden {:?} do not fit {sequences} sequences of {tokens} tokens of width {dim}",
            gates.shape, hidden.shape
        )));
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
