//! Where attention's queries come from: given, or projected by the kernel itself
//! (shaders/attention_projected.wgsl), as the decoder's cross-attention does with its query
//! projection of the stream, one workgroup per (query row, head) computing its head's part.

use super::norm::Norm;
use crate::error::{Error, Result};
use crate::gpu::{Tensor, View};
use crate::model::spec::NormKind;

/// Where an attention call's queries come from.
#[derive(Clone, Copy, Debug)]
pub enum Query<'a> {
    /// [batch * q_rows, heads * head_dim]
    Given(View<'a>),
    Projected(QueryProjection<'a>),
}

impl Query<'_> {
    /// The query rows (batch items x rows per item).
    pub fn rows(&self) -> usize {
        match self {
            Query::Given(q) => q.rows,
            Query::Projected(p) => p.x.rows,
        }
    }
}

impl<'a> From<View<'a>> for Query<'a> {
    fn from(view: View<'a>) -> Query<'a> {
        Query::Given(view)
    }
}

/// Queries the attention kernel projects itself, each workgroup its head of its input row:
/// q = norm(x) · W_hᵀ + b_h, as the fused matmul computes it. The decoder's cross-attention
/// query reads the stream and nothing else, so this saves a dispatch per layer.
#[derive(Clone, Copy, Debug)]
pub struct QueryProjection<'a> {
    /// [batch * q_rows, model_dim], loaded as vec4 (width, offset and stride multiples of 4).
    pub x: View<'a>,
    /// [heads * head_dim, model_dim] in any weight encoding.
    pub weight: &'a Tensor,
    /// [heads * head_dim]
    pub bias: Option<&'a Tensor>,
    pub norm: Option<&'a Norm>,
}

const FLAG_QUERY_RMS: u32 = 32;
const FLAG_QUERY_LAYER_NORM: u32 = 64;
const FLAG_QUERY_BIAS: u32 = 128;

impl QueryProjection<'_> {
    /// Its shape errors for queries of `width` in items of `batch`.
    pub(super) fn check(&self, width: usize, batch: usize) -> Result<()> {
        let x = self.x;
        let model_dim = x.cols;
        if self.weight.shape[..] != [width, model_dim]
            || !x.rows.is_multiple_of(batch)
            || !super::matmul::is_vec4(x)
            || self.bias.is_some_and(|b| b.len() != width)
        {
            return Err(Error::shape(
                "attention query projection",
                format!(
                    "input rows of {batch} items as vec4, a weight [{width}, {model_dim}] and a bias of {width}"
                ),
                format!(
                    "input {}x{} (offset {}, stride {}), weight {:?}, bias {:?}",
                    x.rows,
                    x.cols,
                    x.offset,
                    x.stride,
                    self.weight.shape,
                    self.bias.map(|b| b.len())
                ),
            ));
        }
        x.check("attention query input")?;
        match self.norm {
            Some(norm) => norm.check_rows("attention query norm", model_dim),
            None => Ok(()),
        }
    }

    pub(super) fn flags(&self) -> u32 {
        let norm = match self.norm.map(|n| n.kind) {
            Some(NormKind::RmsNorm) => FLAG_QUERY_RMS,
            Some(NormKind::LayerNorm) => FLAG_QUERY_LAYER_NORM,
            None => 0,
        };
        norm | if self.bias.is_some() {
            FLAG_QUERY_BIAS
        } else {
            0
        }
    }
}
