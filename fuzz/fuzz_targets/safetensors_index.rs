#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::formats::layout::shard_names;

fuzz_target!(|text: &str| {
    let _ = shard_names("model.safetensors.index.json", text);
});
