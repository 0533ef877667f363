//! Loading a model tensor by tensor: a tensor is written to the GPU a block of rows at a
//! time, in any encoding, exactly as if it were uploaded whole; a tensor larger than one
//! block loads in several; rows that do not fit the tensor are refused.

mod common;

use rand::SeedableRng;
use rand::rngs::StdRng;
use seq2seq_gpu::formats::TensorSource;
use seq2seq_gpu::formats::config_json::spec_from_config_json;
use seq2seq_gpu::gpu::writer::quantize_rows;
use seq2seq_gpu::gpu::{Element, Encoding, Gpu, Tensor, TensorWriter};
use seq2seq_gpu::model::random::RandomWeights;
use seq2seq_gpu::model::{Model, WeightFormat};

fn words(gpu: &Gpu, buffer: &wgpu::Buffer) -> Vec<u32> {
    pollster::block_on(gpu.read::<u32>(buffer, (buffer.size() / 4) as usize)).unwrap()
}

fn scales(tensor: &Tensor) -> Option<&wgpu::Buffer> {
    match &tensor.encoding {
        Encoding::Int8 { scales } => Some(scales),
        _ => None,
    }
}

#[test]
fn rows_written_in_blocks_equal_a_whole_upload_in_every_encoding() {
    let gpu = common::gpu();
    // Odd widths put block edges inside a packed word (two f16 or four int8 per word).
    for (rows, cols) in [(7, 3), (5, 1), (6, 5)] {
        let values = common::random_vec(&mut StdRng::seed_from_u64(11), rows * cols, 1.0);
        for element in [Element::F32, Element::F16, Element::Int8] {
            let whole = match element {
                Element::F32 => Tensor::upload_f32(&gpu, "w", &values, &[rows, cols]),
                Element::F16 => Tensor::upload_f16(&gpu, "w", &values, &[rows, cols]),
                Element::Int8 => {
                    let (q, s) = quantize_rows(&values, cols);
                    Tensor::upload_int8(&gpu, "w", &q, &s, &[rows, cols])
                }
            }
            .unwrap();
            let mut writer = TensorWriter::new(&gpu, "w", element, &[rows, cols]).unwrap();
            let mut start = 0;
            for block in [1, 2, 4, 8] {
                let end = (start + block).min(rows);
                writer.rows(&values[start * cols..end * cols]).unwrap();
                start = end;
            }
            let blocked = writer.finish().unwrap();
            let what = format!("{element:?} {rows}x{cols}");
            assert_eq!(blocked.shape, whole.shape, "{what}");
            assert_eq!(
                words(&gpu, &blocked.buffer),
                words(&gpu, &whole.buffer),
                "{what}"
            );
            assert_eq!(
                scales(&blocked).map(|b| words(&gpu, b)),
                scales(&whole).map(|b| words(&gpu, b)),
                "{what}"
            );
        }
    }
}

#[test]
fn rows_that_do_not_fit_the_tensor_are_refused() {
    let gpu = common::gpu();
    let mut writer = TensorWriter::new(&gpu, "w", Element::F16, &[2, 3]).unwrap();
    let partial = writer.rows(&[1.0; 4]).unwrap_err().to_string();
    assert!(partial.contains("whole rows of 3 elements"), "{partial}");
    writer.rows(&[1.0; 3]).unwrap();
    let too_many = writer.rows(&[1.0; 6]).unwrap_err().to_string();
    assert!(too_many.contains("at most 1 more"), "{too_many}");
    let early = writer.finish().unwrap_err().to_string();
    assert!(
        early.contains("2 rows") && early.contains("found 1 rows"),
        "{early}"
    );
    let mut writer = TensorWriter::new(&gpu, "w", Element::Int8, &[2, 3]).unwrap();
    let scales = writer
        .quantized_rows(&[1; 6], &[1.0])
        .unwrap_err()
        .to_string();
    assert!(scales.contains("one scale per row"), "{scales}");
    let flat = TensorWriter::new(&gpu, "w", Element::Int8, &[6])
        .err()
        .unwrap()
        .to_string();
    assert!(flat.contains("a 2-D shape"), "{flat}");
}

/// An embedding larger than the loader's 16 MiB block is read in several blocks, and holds
/// exactly the values of the whole tensor.
#[test]
fn a_tensor_larger_than_a_block_loads_in_blocks() {
    let gpu = common::gpu();
    let config = std::fs::read_to_string(common::fixture::dir("t5-tiny").join("config.json"))
        .unwrap()
        .replace("\"vocab_size\": 512", "\"vocab_size\": 70000")
        .replace("\"num_layers\": 2", "\"num_layers\": 1")
        .replace("\"num_decoder_layers\": 2", "\"num_decoder_layers\": 1");
    let spec = spec_from_config_json(&config).unwrap();
    assert_eq!((spec.vocab_size, spec.d_model), (70000, 64));
    let weights = RandomWeights::new(&spec, 3);
    let model =
        pollster::block_on(Model::load(&gpu, spec.clone(), &weights, WeightFormat::F32)).unwrap();
    let loaded = pollster::block_on(model.weights.encoder_ends.embedding.to_f32(&gpu)).unwrap();
    let name = "shared.weight";
    let whole = pollster::block_on(weights.tensor_shaped(name, &[70000, 64])).unwrap();
    assert!(whole.len() * 4 > 16 << 20);
    assert!(
        loaded == whole,
        "the blocked embedding differs from the whole tensor"
    );
}
