#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::formats::marian::yaml::spec_from_marian_yaml;

fuzz_target!(|text: &str| {
    let _ = spec_from_marian_yaml(text, "model.bin", 32000);
});
