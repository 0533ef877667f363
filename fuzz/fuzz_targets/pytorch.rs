#![no_main]
use libfuzzer_sys::fuzz_target;
use seq2seq_gpu::formats::TensorSource;
use seq2seq_gpu::formats::pytorch::PytorchCheckpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(ckpt) = PytorchCheckpoint::from_shards(vec![("pytorch_model.bin".into(), data.to_vec())]) {
        for name in ["shared.weight", "lm_head.weight"] {
            if let Ok(shape) = ckpt.shape(name) {
                let _ = ckpt.tensor_shaped(name, &shape);
            }
        }
    }
});
