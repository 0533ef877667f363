//! A model on a device: its description, its weights in GPU buffers, and the shortlist of
//! a Firefox Translations model.

use super::names;
use super::spec::{ModelSpec, Positions, StackSpec};
use super::weights::{WeightFormat, Weights};
use crate::error::Result;
use crate::formats::TensorSource;
use crate::formats::marian::shortlist::Shortlist;
use crate::gpu::{Gpu, Tensor, Workspace};
use crate::ops;

pub struct Model {
    pub spec: ModelSpec,
    pub weights: Weights,
    /// Restricts each generation's output layer to the words its input suggests.
    pub shortlist: Option<Shortlist>,
}

impl Model {
    /// Uploads the weights of `checkpoint`, tensor by tensor as they are read.
    pub async fn load(
        gpu: &Gpu,
        spec: ModelSpec,
        checkpoint: &impl TensorSource,
        format: WeightFormat,
    ) -> Result<Model> {
        let weights = Weights::load(
            gpu,
            &names::WithOrWithoutPrefix(checkpoint),
            &spec,
            names::for_family(spec.family),
            format,
        )
        .await?;
        gpu.check()?;
        Ok(Model {
            spec,
            weights,
            shortlist: None,
        })
    }
}

impl Model {
    /// The rotary angles' cos and sin for `positions` positions of `stack`'s heads, for a
    /// model with rotary positions.
    pub(super) fn rotary_table(
        &self,
        ws: &mut Workspace,
        stack: &StackSpec,
        positions: usize,
    ) -> Result<Option<Tensor>> {
        match self.spec.positions {
            Positions::Rotary { theta, .. } => {
                let values = ops::rotary_table(theta, stack.head_dim, positions);
                Ok(Some(ws.upload_f32(&values, &[positions, stack.head_dim])?))
            }
            _ => Ok(None),
        }
    }
}
