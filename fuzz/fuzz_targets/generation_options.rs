#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::GenerationOptions;

fuzz_target!(|text: &str| {
    let _ = GenerationOptions::from_generation_config(text);
});
