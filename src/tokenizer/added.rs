//! The tokens tokenizer_config.json adds to a vocabulary built from vocabulary files
//! (user tokens such as `<sep>`, or words kept whole), added as transformers 5 adds them: in
//! id order, each with its flags, after the family's own specials.

use tokenizers::AddedToken;

use super::backend::Backend;
use super::settings::DeclaredToken;
use crate::error::{Error, Result};

fn misplaced(declared: &DeclaredToken, got: Option<u32>) -> Error {
    Error::Tokenizer(format!(
        "tokenizer_config.json adds {:?} at id {}, but the vocabulary gives it {}",
        declared.token.content,
        declared.id,
        got.map_or("no id".to_string(), |id| format!("id {id}"))
    ))
}

/// Adds `declared` to `backend` and checks that each gets the id the folder declares, so a
/// model never sees ids its embedding rows were not trained for.
pub fn add_declared(backend: &mut Backend, declared: &[DeclaredToken], class: &str) -> Result<()> {
    if declared.is_empty() {
        return Ok(());
    }
    let extendable = match backend {
        Backend::Pipeline(tokenizer) => {
            let tokens: Vec<AddedToken> = declared.iter().map(|d| d.token.clone()).collect();
            tokenizer.add_tokens(&tokens);
            true
        }
        // transformers runs these classes on its own Python code, whose added tokens we do
        // not reproduce: only tokens the vocabulary already holds at their id are accepted.
        Backend::Mapped(_) | Backend::ByT5(_) => false,
    };
    for d in declared {
        let got = backend.id_of(&d.token.content);
        if got == Some(d.id) {
            continue;
        }
        return Err(if extendable || got.is_some() {
            misplaced(d, got)
        } else {
            Error::Tokenizer(format!(
                "a {class} built from vocabulary files takes no tokens beyond its vocabulary, and tokenizer_config.json adds {:?} at id {} (a tokenizer.json holding it would load)",
                d.token.content, d.id
            ))
        });
    }
    Ok(())
}
