//! Hugging Face hub ids as the base URL of their files: `org/name` (or a legacy `name`),
//! with an optional `@revision` (a branch, a tag, a commit, or `refs/pr/6`).

use crate::error::{Error, Result};

const HUB: &str = "https://huggingface.co";

/// A character a repo id may hold (the hub allows letters, digits, `-`, `_` and `.`).
fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.".contains(c)
}

/// `input` as the base URL of a model folder: a URL or a path stays as it is; a hub id
/// becomes `https://huggingface.co/<id>/resolve/<revision>/` (revision `main` by default).
pub fn model_url(input: &str) -> Result<String> {
    let input = input.trim();
    let is_location = ["http://", "https://", "//", "/", "./", "../", "blob:"]
        .iter()
        .any(|p| input.starts_with(p));
    if is_location {
        return Ok(input.to_string());
    }
    let (id, revision) = input.split_once('@').unwrap_or((input, "main"));
    let parts: Vec<&str> = id.split('/').collect();
    let well_formed = (1..=2).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && !p.starts_with('.') && p.chars().all(id_char));
    if !well_formed || revision.is_empty() {
        return Err(Error::invalid(format!(
            "\"{input}\" is neither a URL nor a Hugging Face id (org/name, optionally @revision)"
        )));
    }
    let revision: String = revision
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    Ok(format!("{HUB}/{id}/resolve/{revision}/"))
}

#[cfg(test)]
mod tests {
    use super::model_url;

    #[test]
    fn ids_become_resolve_urls_and_locations_stay() {
        let cases = [
            (
                "Helsinki-NLP/opus-mt-en-de",
                "https://huggingface.co/Helsinki-NLP/opus-mt-en-de/resolve/main/",
            ),
            ("t5-small", "https://huggingface.co/t5-small/resolve/main/"),
            (
                "facebook/nllb-200-distilled-600M@refs/pr/6",
                "https://huggingface.co/facebook/nllb-200-distilled-600M/resolve/refs%2Fpr%2F6/",
            ),
            (
                "google/mt5-small@v1.0",
                "https://huggingface.co/google/mt5-small/resolve/v1.0/",
            ),
            (" https://host/models/x/ ", "https://host/models/x/"),
            (
                "/tests/fixtures/hub/mbart50/",
                "/tests/fixtures/hub/mbart50/",
            ),
            ("./local", "./local"),
        ];
        for (input, url) in cases {
            assert_eq!(model_url(input).unwrap(), url, "{input}");
        }
        for bad in ["", "a/b/c", "org/na me", "org/..", "org/name@"] {
            assert!(model_url(bad).is_err(), "{bad}");
        }
    }
}
