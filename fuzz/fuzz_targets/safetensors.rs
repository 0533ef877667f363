#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::formats::{Checkpoint, TensorSource};

fuzz_target!(|data: &[u8]| {
    if let Ok(ckpt) = Checkpoint::from_shards(vec![("model.safetensors".into(), data.to_vec())]) {
        for name in ["shared.weight", "lm_head.weight"] {
            if let Ok(shape) = ckpt.shape(name) {
                let _ = ckpt.tensor_shaped(name, &shape);
            }
        }
    }
});
