//! Firefox Translations' files: the Marian `.bin` model (`bin`), the architecture in its
//! YAML (`yaml`), its tensors under the loader's names (`tensors`), the lexical shortlist
//! (`shortlist`) and the bergamot config that names them (`bergamot`).

pub mod bergamot;
pub mod bin;
pub mod shortlist;
pub mod tensors;
pub mod yaml;
