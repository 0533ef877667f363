//! The tokens tokenizer_config.json adds to a vocabulary built from vocabulary files
//! (user tokens such as `<sep>`, or words kept whole), added as transformers 5 adds them: in
//! id order, each with its flags, after the family's own specials.

use tokenizers::{AddedToken, AddedVocabulary};

use super::backend::Backend;
use super::settings::DeclaredToken;
use crate::error::{Error, Result};

fn misplaced(declared: &DeclaredToken, got: Option<u32>) -> Error {
    Error::Tokenizer(format!(
        "{} adds {:?} at id {}, but the vocabulary gives it {}",
        declared.file,
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
            // transformers adds the declared tokens first, in id order, and the family's own
            // specials only where they are not declared: a declared token's flags win (a
            // BART folder saved by transformers 4 declares `<mask>` with lstrip). Every
            // family special is in its vocabulary, so the order changes no id.
            let mut family: Vec<(u32, AddedToken)> =
                tokenizer.get_added_tokens_decoder().into_iter().collect();
            family.sort_by_key(|(id, _)| *id);
            let mut tokens: Vec<AddedToken> = declared.iter().map(|d| d.token.clone()).collect();
            tokens.extend(
                family
                    .into_iter()
                    .map(|(_, token)| token)
                    .filter(|token| !declared.iter().any(|d| d.token.content == token.content)),
            );
            tokenizer.with_added_vocabulary(AddedVocabulary::new());
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
                "a {class} built from vocabulary files takes no tokens beyond its vocabulary, and {} adds {:?} at id {} (a tokenizer.json holding it would load)",
                d.file, d.token.content, d.id
            ))
        });
    }
    Ok(())
}
