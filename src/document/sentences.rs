//! Splits a paragraph (or several, separated by line breaks) into sentences to translate one
//! by one, and joins their translations back with the original spacing and line breaks.
//!
//! Sentence boundaries are Unicode's (UAX #29, `unicode-segmentation`), which break after
//! every full stop followed by a capital; a stop after a common abbreviation or a single
//! initial ("Mr. Smith", "J. R. R. Tolkien") is taken back, as sentence splitters with
//! non-breaking prefix lists do (bergamot's ssplit, Moses).

use unicode_segmentation::UnicodeSegmentation;

/// Words whose full stop does not end a sentence (compared without case).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "no",
    "fig", "figs", "vol", "approx", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec", "gen", "gov", "sen", "rep", "rev", "capt",
    "col", "lt", "sgt", "dept", "univ", "ca", "cf", "al",
];

/// A text cut into sentences: `lead`, then each sentence followed by its separator (the
/// spaces or line breaks after it), give back the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sentences {
    pub lead: String,
    pub sentences: Vec<String>,
    pub separators: Vec<String>,
}

impl Sentences {
    pub fn split(text: &str) -> Sentences {
        let trimmed = text.trim_start();
        let mut lead = text[..text.len() - trimmed.len()].to_string();
        let mut sentences: Vec<String> = Vec::new();
        let mut separators: Vec<String> = Vec::new();
        for piece in trimmed.split_sentence_bounds() {
            let sentence = piece.trim_end();
            let separator = &piece[sentence.len()..];
            if sentence.is_empty() {
                // A blank line between paragraphs: spacing, not a sentence.
                separators
                    .last_mut()
                    .unwrap_or(&mut lead)
                    .push_str(separator);
                continue;
            }
            match sentences.last_mut() {
                // Glued to the previous sentence when that one ends in an abbreviation and
                // is separated by spaces only (a line break always ends a sentence).
                Some(previous)
                    if ends_in_abbreviation(previous)
                        && separators.last().is_some_and(|s| !s.contains('\n')) =>
                {
                    let joined = separators.pop().unwrap_or_default();
                    previous.push_str(&joined);
                    previous.push_str(sentence);
                    separators.push(separator.to_string());
                }
                _ => {
                    sentences.push(sentence.to_string());
                    separators.push(separator.to_string());
                }
            }
        }
        Sentences {
            lead,
            sentences,
            separators,
        }
    }

    /// The text with each sentence replaced by its translation.
    pub fn join<S: AsRef<str>>(&self, translations: &[S]) -> String {
        let mut text = self.lead.clone();
        for (translation, separator) in translations.iter().zip(&self.separators) {
            text.push_str(translation.as_ref());
            text.push_str(separator);
        }
        text
    }
}

fn ends_in_abbreviation(sentence: &str) -> bool {
    let Some(body) = sentence.strip_suffix('.') else {
        return false;
    };
    let word = body
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"')
        .next()
        .unwrap_or("");
    let mut letters = word.chars();
    let initial = matches!((letters.next(), letters.next()), (Some(c), None) if c.is_uppercase());
    initial || ABBREVIATIONS.contains(&word.to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<String> {
        Sentences::split(text).sentences
    }

    #[test]
    fn splits_at_sentence_ends_and_joins_back_with_the_same_spacing() {
        let text = "  Hello there.  How are you? Fine!\nNew line here.\n\nLast one";
        let split = Sentences::split(text);
        assert_eq!(
            split.sentences,
            [
                "Hello there.",
                "How are you?",
                "Fine!",
                "New line here.",
                "Last one"
            ]
        );
        assert_eq!(split.join(&split.sentences), text);
        let upper: Vec<String> = split.sentences.iter().map(|s| s.to_uppercase()).collect();
        assert_eq!(
            split.join(&upper),
            "  HELLO THERE.  HOW ARE YOU? FINE!\nNEW LINE HERE.\n\nLAST ONE"
        );
    }

    #[test]
    fn abbreviations_and_initials_do_not_end_a_sentence() {
        assert_eq!(
            sentences("Mr. Smith met Dr. Jones at 3 p.m. on Monday. J. R. R. Tolkien wrote it."),
            [
                "Mr. Smith met Dr. Jones at 3 p.m. on Monday.",
                "J. R. R. Tolkien wrote it."
            ]
        );
        // A line break ends a sentence whatever precedes it.
        assert_eq!(sentences("See Fig.\nNext"), ["See Fig.", "Next"]);
    }

    #[test]
    fn empty_and_blank_text_have_no_sentences() {
        assert!(sentences("").is_empty());
        let blank = Sentences::split("   ");
        assert!(blank.sentences.is_empty());
        assert_eq!(blank.join::<&str>(&[]), "   ");
    }
}
