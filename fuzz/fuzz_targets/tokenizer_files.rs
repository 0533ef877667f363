#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::formats::layout::TokenizerFiles;
use seq2seq_gpu::formats::sentencepiece::SentencePiece;
use seq2seq_gpu::tokenizer::Tokenizer;

/// ByT5 needs no vocabulary file, so its settings and added tokens are reached alone.
const BYT5: Option<(&str, &str)> = Some(("tokenizer_config.json", r#"{"tokenizer_class": "ByT5Tokenizer"}"#));

// The first byte picks the file, the model type that names its class, and a fixed file
// beside it; the rest is the file's content.
const KINDS: [(&str, Option<&str>, Option<(&str, &str)>); 8] = [
    ("spiece.model", Some("t5"), None),
    ("sentencepiece.bpe.model", Some("m2m_100"), None),
    ("source.spm", Some("marian"), None),
    ("vocab.json", Some("bart"), None),
    ("merges.txt", Some("bart"), None),
    ("tokenizer_config.json", Some("t5"), None),
    ("tokenizer_config.json", None, None),
    ("added_tokens.json", None, BYT5),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let (file, model_type, beside) = KINDS[pick as usize % KINDS.len()];
    let _ = SentencePiece::parse(file, content);
    let mut files = vec![(file.to_string(), content.to_vec())];
    files.extend(beside.map(|(name, text)| (name.to_string(), text.as_bytes().to_vec())));
    if let Ok(tokenizer) = Tokenizer::from_files(&TokenizerFiles::new(files), model_type)
        && let Ok(ids) = tokenizer.encode("A sentence, with punctuation: 1 2 3.")
    {
        let _ = tokenizer.decode(&ids);
    }
});
