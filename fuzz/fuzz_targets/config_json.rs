#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::model::ModelSpec;

fuzz_target!(|text: &str| {
    let _ = ModelSpec::from_config_json(text);
});
