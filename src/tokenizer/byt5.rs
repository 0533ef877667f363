//! ByT5's tokenizer, which has no vocabulary file: each UTF-8 byte b is id b + 3 (after pad,
//! eos and unk), and extra ids follow the 256 bytes. Special tokens written in the text are
//! matched first, longest first; pad, eos and unk also swallow the whitespace beside them.

use crate::error::Result;

/// Ids of the special tokens before the bytes.
const OFFSET: u32 = 3;
const EOS: u32 = 1;

pub struct ByT5 {
    /// (text, id, whether it strips the whitespace beside it), longest text first.
    specials: Vec<(String, u32, bool)>,
}

impl ByT5 {
    pub fn new(pad: &str, eos: &str, unk: &str, extra_ids: usize) -> ByT5 {
        let mut specials = vec![
            (pad.to_string(), 0, true),
            (eos.to_string(), EOS, true),
            (unk.to_string(), 2, true),
        ];
        specials.extend(
            (0..extra_ids).map(|i| (format!("<extra_id_{i}>"), OFFSET + 256 + i as u32, false)),
        );
        specials.sort_by_key(|(text, _, _)| std::cmp::Reverse(text.len()));
        ByT5 { specials }
    }

    pub fn vocab_size(&self) -> usize {
        OFFSET as usize + 256 + self.specials.len() - 3
    }

    /// The id of a special token, or of a single-byte character.
    pub fn id_of(&self, token: &str) -> Option<u32> {
        match token.as_bytes() {
            [byte] => Some(OFFSET + u32::from(*byte)),
            _ => self
                .specials
                .iter()
                .find(|(s, _, _)| s == token)
                .map(|(_, id, _)| *id),
        }
    }

    fn special_at(&self, text: &str) -> Option<&(String, u32, bool)> {
        self.specials
            .iter()
            .find(|(s, _, _)| text.starts_with(s.as_str()))
    }

    /// The ids of `text`, ending with eos unless the text already does.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        // Pieces between special tokens, and the specials (with their strip rule).
        let mut pieces: Vec<Result<String, (u32, bool)>> = Vec::new();
        let mut plain = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some((special, id, strips)) = self.special_at(rest) {
                if !plain.is_empty() {
                    pieces.push(Ok(std::mem::take(&mut plain)));
                }
                pieces.push(Err((*id, *strips)));
                rest = &rest[special.len()..];
            } else {
                plain.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !plain.is_empty() {
            pieces.push(Ok(plain));
        }
        for i in 0..pieces.len() {
            if let Err((_, true)) = pieces[i] {
                if let Some(Ok(after)) = pieces.get_mut(i + 1) {
                    *after = after.trim_start().to_string();
                }
                if let Some(Ok(before)) = i.checked_sub(1).and_then(|j| pieces.get_mut(j)) {
                    *before = before.trim_end().to_string();
                }
            }
        }
        let mut ids: Vec<u32> = pieces
            .into_iter()
            .flat_map(|piece| match piece {
                Ok(text) => text.bytes().map(|b| b as u32 + OFFSET).collect::<Vec<_>>(),
                Err((id, _)) => vec![id],
            })
            .collect();
        if ids.last() != Some(&EOS) {
            ids.push(EOS);
        }
        Ok(ids)
    }

    /// The text of the byte ids (special tokens skipped); bytes that do not form UTF-8 are
    /// dropped, as Python's `errors="ignore"` does.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .filter(|&&id| (OFFSET..OFFSET + 256).contains(&id))
            .map(|&id| (id - OFFSET) as u8)
            .collect();
        let mut text = String::new();
        for chunk in bytes.utf8_chunks() {
            text.push_str(chunk.valid());
        }
        text
    }
}
