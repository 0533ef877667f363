#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::formats::config_json::spec_from_config_json;

fuzz_target!(|text: &str| {
    let _ = spec_from_config_json(text);
});
