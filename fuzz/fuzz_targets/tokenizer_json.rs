#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::tokenizer::Tokenizer;

fuzz_target!(|data: &[u8]| {
    if let Ok(tokenizer) = Tokenizer::from_bytes(data)
        && let Ok(ids) = tokenizer.encode("A sentence, with punctuation: 1 2 3.")
    {
        let _ = tokenizer.decode(&ids);
    }
});
