#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::generate::GenerationConfig;

fuzz_target!(|text: &str| {
    let _ = GenerationConfig::model_defaults(Some(text));
});
