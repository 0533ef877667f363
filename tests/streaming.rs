//! The streaming detokenizer delivers whole characters only, and its pieces add up to the
//! final text, also when a byte-level tokenizer splits a character across tokens.

mod common;

use seq2seq_gpu::generate::TextStreamer;
use seq2seq_gpu::tokenizer::Tokenizer;

fn tokenizer(name: &str) -> Tokenizer {
    Tokenizer::from_bytes(
        &std::fs::read(common::fixture::dir(name).join("tokenizer.json")).unwrap(),
    )
    .unwrap()
}

fn stream(tok: &Tokenizer, ids: &[u32]) -> Vec<String> {
    let mut streamer = TextStreamer::new();
    let mut pieces: Vec<String> = ids
        .iter()
        .filter_map(|&id| streamer.push(tok, id).unwrap())
        .collect();
    pieces.extend(streamer.finish(tok).unwrap());
    pieces
}

#[test]
fn byte_level_pieces_are_whole_characters() {
    // bart-tiny's byte-level BPE has only single-byte tokens for these characters, so each
    // multi-byte character spans several tokens.
    let tok = tokenizer("bart-tiny");
    for text in [
        "café au lait",
        "naïve – “quoted” €5",
        "日本語のテキスト",
        "emoji 🙂 end",
    ] {
        let ids = tok.encode(text).unwrap();
        let pieces = stream(&tok, &ids);
        let whole = tok.decode(&ids).unwrap();
        assert!(
            whole.contains(text.split(' ').next().unwrap()),
            "round trip of {text:?}: {whole:?}"
        );
        assert!(
            pieces.iter().all(|p| !p.contains('\u{FFFD}')),
            "{text:?} streamed a partial character: {pieces:?}"
        );
        assert_eq!(pieces.concat(), whole, "{text:?}");
        assert!(
            pieces.len() > 2,
            "{text:?} arrived in {} pieces",
            pieces.len()
        );
    }
}

#[test]
fn metaspace_pieces_keep_their_spaces() {
    let tok = tokenizer("t5-tiny");
    let ids = tok
        .encode("This License applies to any program or other work.")
        .unwrap();
    let pieces = stream(&tok, &ids);
    assert_eq!(pieces.concat(), tok.decode(&ids).unwrap());
    assert!(
        pieces.iter().skip(1).any(|p| p.starts_with(' ')),
        "{pieces:?}"
    );
}
