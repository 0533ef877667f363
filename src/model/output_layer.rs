//! The output layer of one generation: the model's own, or with a shortlist the rows (and
//! logits biases) of the words the inputs suggest, gathered once per generation. A batch
//! gathers the union of its inputs' shortlists, and each row's logits outside its own input's
//! list are masked, so that every input chooses among exactly the words it would alone.

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
    /// f32 [inputs, columns]: 0 where the column is in the input's own shortlist, -inf where
    /// only another input of the batch brought it (batches of several inputs only).
    pub(super) input_masks: Option<Vec<Vec<f32>>>,
}

impl Model {
    /// The model's own output layer, over the whole vocabulary.
    pub(super) fn full_output_layer(&self) -> OutputLayer {
        let lm_head = &self.weights.lm_head;
        OutputLayer {
            layer: Linear {
                weight: lm_head.weight.clone(),
                bias: lm_head.bias.clone(),
            },
            vocabulary: None,
            shortlist: None,
            input_masks: None,
        }
    }

    /// What a row decoding `source` may choose, for [`super::Decoder::begin_row`]: with a
    /// shortlist, f32 [vocab] with 0 for the words it suggests and -inf for the rest (a
    /// continuous decoder's output layer keeps every word).
    pub fn row_vocabulary(&self, source: &[u32]) -> Result<Option<Vec<f32>>> {
        let Some(shortlist) = &self.shortlist else {
            return Ok(None);
        };
        let vocab = self.spec.vocab_size;
        let mut row = vec![f32::NEG_INFINITY; vocab];
        for id in shortlist.vocabulary(source, vocab)? {
            row[id as usize] = 0.0;
        }
        Ok(Some(row))
    }
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
            return Ok(self.full_output_layer());
        };
        let lists = (encoded.source_ids.iter())
            .map(|source| shortlist.vocabulary(source, self.spec.vocab_size))
            .collect::<Result<Vec<_>>>()?;
        let mut list: Vec<u32> = lists.concat();
        list.sort_unstable();
        list.dedup();
        let input_masks = (lists.len() > 1).then(|| {
            (lists.iter())
                .map(|own| {
                    (list.iter())
                        .map(|id| match own.binary_search(id) {
                            Ok(_) => 0.0,
                            Err(_) => f32::NEG_INFINITY,
                        })
                        .collect()
                })
                .collect()
        });
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
            input_masks,
        })
    }
}
