//! Row softmax, in place.

use crate::error::{Error, Result};
use crate::gpu::shaders::SOFTMAX;
use crate::gpu::{Recorder, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SoftmaxParams {
    rows: u32,
    cols: u32,
    _pad: [u32; 2],
}

pub fn softmax(rec: &mut Recorder, x: &Tensor) -> Result<()> {
    let view = x.matrix();
    if view.cols == 0 {
        return Err(Error::invalid("softmax over an empty row"));
    }
    let params = SoftmaxParams {
        rows: view.rows as u32,
        cols: view.cols as u32,
        _pad: [0; 2],
    };
    rec.dispatch(&SOFTMAX, &params, &[&x.buffer], [view.rows as u32, 1, 1])
}
