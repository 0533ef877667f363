//! The PyTorch reader against a checkpoint torch wrote, and against built archives: shared
//! and offset storages, half precision, and every kind of broken or hostile input.

use std::io::{Cursor, Write};

use crate::error::Result;
use crate::formats::checkpoint::Checkpoint;
use crate::formats::layout::CheckpointFormat;
use crate::formats::source::MemorySource;
use crate::formats::tensors::TensorSource;

type PytorchCheckpoint = Checkpoint<MemorySource>;

/// The values of a tensor, read as the loader reads them.
fn values(ckpt: &PytorchCheckpoint, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    pollster::block_on(ckpt.tensor_shaped(name, shape))
}

const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/hub/mt5-bin/pytorch_model.bin"
);

fn real() -> PytorchCheckpoint {
    let bytes = std::fs::read(REAL).unwrap();
    Checkpoint::from_files(
        CheckpointFormat::Pytorch,
        vec![("pytorch_model.bin".into(), bytes)],
    )
    .unwrap()
}

#[test]
fn a_checkpoint_torch_saved_reads_with_its_aliases() {
    let ckpt = real();
    let shared = values(&ckpt, "shared.weight", &[412, 64]).unwrap();
    // save_pretrained keeps the tied embeddings as views of one storage.
    for alias in ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"] {
        assert_eq!(values(&ckpt, alias, &[412, 64]).unwrap(), shared);
    }
    assert!(shared.iter().all(|v| v.is_finite()) && shared.iter().any(|&v| v != 0.0));
    assert_eq!(
        ckpt.shape("encoder.block.0.layer.0.SelfAttention.q.weight")
            .unwrap(),
        vec![64, 64]
    );
    let wrong = values(&ckpt, "shared.weight", &[64, 412]).unwrap_err();
    assert!(
        wrong
            .to_string()
            .starts_with("pytorch_model.bin: tensor \"shared.weight\" has shape [412, 64]"),
        "{wrong}"
    );
    let missing = values(&ckpt, "nope", &[1]).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "pytorch_model.bin: missing tensor \"nope\""
    );
}

/// Pickle bytes, written opcode by opcode.
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    fn str(self, s: &str) -> Self {
        let mut bytes = vec![b'X'];
        bytes.extend((s.len() as u32).to_le_bytes());
        bytes.extend(s.as_bytes());
        self.op(&bytes)
    }

    fn global(self, module: &str, name: &str) -> Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }

    fn int(self, v: u16) -> Self {
        let [a, b] = v.to_le_bytes();
        self.op(&[b'M', a, b])
    }

    fn ints(self, values: &[u16]) -> Self {
        values.iter().fold(self.op(b"("), |p, &v| p.int(v)).op(b"t")
    }

    /// `name: _rebuild_tensor_v2(storage, offset, size, stride)` as a SETITEMS pair, the
    /// storage given as (class, key, elements).
    fn tensor(
        self,
        name: &str,
        (class, key, numel): (&str, &str, u16),
        offset: u16,
        size: &[u16],
        stride: &[u16],
    ) -> Self {
        self.str(name)
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(b"((")
            .str("storage")
            .global("torch", class)
            .str(key)
            .str("cpu")
            .int(numel)
            .op(b"tQ")
            .int(offset)
            .ints(size)
            .ints(stride)
            .op(&[0x89])
            .global("collections", "OrderedDict")
            .op(b")Rt")
            .op(b"R")
    }

    fn dict(entries: impl FnOnce(Pickle) -> Pickle) -> Vec<u8> {
        entries(Pickle::default().op(&[0x80, 2]).op(b"}("))
            .op(b"u.")
            .0
    }
}

fn archive(pickle: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).unwrap();
    zip.write_all(pickle).unwrap();
    for (key, bytes) in storages {
        zip.start_file(format!("archive/data/{key}"), stored)
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn parse_bytes(bytes: Vec<u8>) -> Result<PytorchCheckpoint> {
    Checkpoint::from_files(CheckpointFormat::Pytorch, vec![("model.bin".into(), bytes)])
}

fn small() -> Vec<u8> {
    let pickle = Pickle::dict(|p| {
        p.tensor("a", ("FloatStorage", "0", 6), 0, &[2, 3], &[3, 1])
            .tensor("tail", ("FloatStorage", "0", 6), 4, &[2], &[1])
            .tensor("h", ("HalfStorage", "1", 2), 0, &[2], &[1])
    });
    let half: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
        .collect();
    archive(
        &pickle,
        &[("0", f32_bytes(&[0., 1., 2., 3., 4., 5.])), ("1", half)],
    )
}

#[test]
fn built_archives_read_with_offsets_and_half_precision() {
    let ckpt = parse_bytes(small()).unwrap();
    assert_eq!(
        values(&ckpt, "a", &[2, 3]).unwrap(),
        [0., 1., 2., 3., 4., 5.]
    );
    assert_eq!(values(&ckpt, "tail", &[2]).unwrap(), [4., 5.]);
    assert_eq!(values(&ckpt, "h", &[2]).unwrap(), [1.5, -2.0]);
}

fn fails(bytes: Vec<u8>, needle: &str) {
    match parse_bytes(bytes) {
        Ok(_) => panic!("accepted an archive that should fail with {needle:?}"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with("model.bin: ") && message.contains(needle),
                "{message}"
            );
        }
    }
}

#[test]
fn broken_and_hostile_archives_are_refused_by_name() {
    let storage = || vec![("0", f32_bytes(&[0.0; 6]))];
    fails(b"not a zip".to_vec(), "not a PyTorch zip archive");
    let evil = Pickle::dict(|p| {
        p.str("x")
            .global("os", "system")
            .str("rm -rf /")
            .op(&[0x85])
            .op(b"R")
    });
    fails(archive(&evil, &storage()), "calls os.system");
    let strided = Pickle::dict(|p| p.tensor("t", ("FloatStorage", "0", 6), 0, &[2, 3], &[1, 2]));
    fails(archive(&strided, &storage()), "not stored contiguously");
    let outside = Pickle::dict(|p| p.tensor("t", ("FloatStorage", "0", 6), 4, &[2, 3], &[3, 1]));
    fails(archive(&outside, &storage()), "outside its storage");
    let short = Pickle::dict(|p| p.tensor("t", ("FloatStorage", "0", 60), 0, &[2, 3], &[3, 1]));
    fails(archive(&short, &storage()), "fewer than its 60 elements");
    let no_storage = Pickle::dict(|p| p.tensor("t", ("FloatStorage", "9", 6), 0, &[6], &[1]));
    fails(
        archive(&no_storage, &storage()),
        "archive/data/9 is not in the archive",
    );
    let memo = Pickle::dict(|p| p.str("t").op(b"h\x07"));
    fails(
        archive(&memo, &storage()),
        "memo entry 7 is read before it is written",
    );
    let cut = Pickle::dict(|p| p.tensor("t", ("FloatStorage", "0", 6), 0, &[6], &[1]));
    fails(archive(&cut[..cut.len() / 2], &storage()), "pickle");
    fails(
        archive(&[0x80, 2, 0xff], &storage()),
        "unsupported opcode 0xff",
    );
    let not_dict = Pickle::default().op(&[0x80, 2]).op(b"]").op(b".").0;
    fails(archive(&not_dict, &storage()), "no dict of tensors");
    let long = Pickle::dict(|p| p.tensor("t", ("LongStorage", "0", 3), 0, &[3], &[1]));
    let ckpt = parse_bytes(archive(&long, &storage())).unwrap();
    let message = values(&ckpt, "t", &[3]).unwrap_err().to_string();
    assert!(message.contains("dtype Long"), "{message}");
}

#[test]
fn every_truncation_and_many_mutations_fail_without_panicking() {
    let bytes = small();
    for len in 0..bytes.len() {
        let _ = parse_bytes(bytes[..len].to_vec());
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        let mut mutated = bytes.clone();
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state % mutated.len() as u64) as usize;
            mutated[at] = (state >> 32) as u8;
        }
        if let Ok(ckpt) = parse_bytes(mutated) {
            for name in ["a", "tail", "h"] {
                if let Ok(shape) = ckpt.shape(name) {
                    let _ = values(&ckpt, name, &shape);
                }
            }
        }
    }
}
