//! Models on the GPU: the normalised description (`spec`), where each family's checkpoint
//! keeps each weight (`names`), the weight loader (`weights`), and the encoder-decoder graph
//! (`graph`, `encoder`, `decoder`) recorded from the description.

mod cache_layout;
mod continuous;
pub mod decoder;
mod decoder_run;
pub mod encoder;
mod graph;
pub mod loaded;
pub mod names;
mod output_layer;
pub mod random;
pub mod relative_position;
mod scratch;
pub mod sinusoids;
pub mod spec;
mod weight_format;
pub mod weights;

pub use decoder::{Choice, Decoder, DecoderShape};
pub use encoder::Encoded;
pub use loaded::Model;
pub use spec::ModelSpec;
pub use weights::WeightFormat;
