#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::formats::marian::bin::MarianBin;

fuzz_target!(|data: &[u8]| {
    if let Ok(bin) = MarianBin::parse("model.bin", data.to_vec()) {
        let names: Vec<String> = bin.names().map(str::to_string).collect();
        for name in names {
            let _ = bin.f32(&name);
            let _ = bin.int8(&name);
        }
    }
});
