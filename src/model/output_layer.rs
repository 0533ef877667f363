//! The output layer of one generation: the model's own, or with a shortlist the rows (and
//! logits biases) of the words the inputs suggest, gathered once per generation.

use std::sync::Arc;

use super::encoder::Encoded;
use super::loaded::Model;
use super::weights::Linear;
use crate::error::Result;
use crate::gpu::{Gpu, Recorder, RowBlocks, Tensor, Workspace};
use crate::ops;

/// The output layer of one generation: the model's, or its shortlisted rows.
pub(super) struct OutputLayer {
    pub(super) layer: Linear,
    /// u32 token id of each row, with a shortlist.
    pub(super) vocabulary: Option<Tensor>,
    pub(super) shortlist: Option<Vec<u32>>,
}

impl Model {
    /// With a shortlist, gathers the rows (and logits biases) of the words the inputs
    /// suggest, once per generation, so that each step computes only their logits.
    pub(super) fn output_layer(
        &self,
        gpu: &Arc<Gpu>,
        ws: &mut Workspace,
        encoded: &Encoded,
    ) -> Result<OutputLayer> {
        let lm_head = &self.weights.lm_head;
        let Some(shortlist) = &self.shortlist else {
            return Ok(OutputLayer {
                layer: Linear {
                    weight: lm_head.weight.clone(),
                    bias: lm_head.bias.clone(),
                },
                vocabulary: None,
                shortlist: None,
            });
        };
        let source: Vec<u32> = encoded.source_ids.concat();
        let list = shortlist.vocabulary(&source, self.spec.vocab_size)?;
        let ids = ws.upload_u32(&list)?;
        let mut rec = Recorder::new(gpu);
        let weight = ops::gather_rows(&mut rec, ws, &lm_head.weight, &ids)?;
        let bias = match &lm_head.bias {
            Some(bias) => {
                // The bias as a table of one-value rows, gathered like the weight's rows.
                let column = RowBlocks {
                    shape: vec![self.spec.vocab_size, 1],
                    parts: (bias.parts.iter())
                        .map(|p| Tensor {
                            shape: vec![p.shape[0], 1],
                            ..p.clone()
                        })
                        .collect(),
                };
                let gathered = ops::gather_rows(&mut rec, ws, &column, &ids)?;
                Some(RowBlocks::one(Tensor {
                    shape: vec![list.len()],
                    ..gathered
                }))
            }
            None => None,
        };
        rec.finish()?.submit(gpu);
        Ok(OutputLayer {
            layer: Linear {
                weight: RowBlocks::one(weight),
                bias,
            },
            vocabulary: Some(ids),
            shortlist: Some(list),
        })
    }
}
