//! Models: description, checkpoint, GPU weights and the encoder-decoder graph.

pub mod checkpoint;
pub mod config_json;
pub mod decoder;
pub mod encoder;
mod graph;
pub mod marian_bin;
pub mod marian_source;
pub mod marian_yaml;
pub mod names;
pub mod random;
pub mod relative_position;
pub mod shortlist;
pub mod sinusoids;
pub mod spec;
pub mod weights;

pub use checkpoint::{Checkpoint, TensorSource};
pub use decoder::{Decoder, DecoderShape};
pub use encoder::Encoded;
pub use shortlist::Shortlist;
pub use spec::ModelSpec;

use crate::error::Result;
use crate::gpu::Gpu;
pub use weights::WeightFormat;
use weights::Weights;

pub struct Model {
    pub spec: ModelSpec,
    pub weights: Weights,
    /// Restricts each generation's output layer to the words its input suggests.
    pub shortlist: Option<Shortlist>,
}

impl Model {
    pub fn load(
        gpu: &Gpu,
        spec: ModelSpec,
        checkpoint: &dyn TensorSource,
        format: WeightFormat,
    ) -> Result<Model> {
        let weights = Weights::load(
            gpu,
            checkpoint,
            &spec,
            names::for_family(spec.family),
            format,
        )?;
        gpu.check()?;
        Ok(Model {
            spec,
            weights,
            shortlist: None,
        })
    }
}
