#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::formats::marian::shortlist::Shortlist;

fuzz_target!(|data: &[u8]| {
    if let Ok(shortlist) = Shortlist::parse("lex.bin", data) {
        let _ = shortlist.vocabulary(&[0, 1, 2, 31999], 32000);
    }
});
