#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::formats::{Checkpoint, CheckpointFormat, TensorSource};

fuzz_target!(|data: &[u8]| {
    let files = vec![("model.safetensors".into(), data.to_vec())];
    if let Ok(ckpt) = Checkpoint::from_files(CheckpointFormat::Safetensors, files) {
        for name in ["shared.weight", "lm_head.weight"] {
            if let Ok(shape) = ckpt.shape(name) {
                let _ = pollster::block_on(ckpt.tensor_shaped(name, &shape));
            }
        }
    }
});
