#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::formats::marian::bergamot::bergamot_manifest;

fuzz_target!(|text: &str| {
    let _ = bergamot_manifest("config.yml", text);
});
