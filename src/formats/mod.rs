//! Turning bytes into descriptions and tensors; nothing here knows the GPU. Where a model
//! folder's files are (`layout`, over any `source::FileSource`), checkpoints read tensor by
//! tensor (`checkpoint`) from the headers of safetensors (`safetensors_header`) and PyTorch
//! (`pytorch`) files, `config.json` (`config_json`), the tensor interface the weight loader
//! reads (`tensors`), and Firefox Translations' Marian formats (`marian`).

pub mod checkpoint;
pub mod config_json;
pub mod hub;
pub mod layout;
pub mod marian;
pub mod pytorch;
pub mod safetensors_header;
pub mod sentencepiece;
pub mod source;
pub mod tensors;

pub use checkpoint::Checkpoint;
pub use layout::CheckpointFormat;
pub use layout::ModelFolder;
#[cfg(not(target_arch = "wasm32"))]
pub use source::DirSource;
pub use source::{FileSource, MemorySource};
pub use tensors::{StoredTensor, TensorSource};
