//! Loading a model tensor by tensor: a tensor is written to the GPU a block of rows at a
//! time, in any encoding, exactly as if it were uploaded whole; a tensor larger than one
//! block loads in several; rows that do not fit the tensor are refused.

mod common;

use rand::SeedableRng;
use rand::rngs::StdRng;
use seq2seq_gpu::formats::TensorSource;
use seq2seq_gpu::formats::config_json::spec_from_config_json;
use seq2seq_gpu::gpu::writer::quantize_rows;
use seq2seq_gpu::gpu::{Element, Encoding, Gpu, GpuOptions, Tensor, TensorWriter};
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
            let blocked = writer.finish_one().unwrap();
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

/// On a device whose binding limit is smaller than a matrix, the matrix is split into row
/// blocks of as many rows as fit, each equal to those rows uploaded alone; a single row
/// larger than the limit is refused naming it.
#[test]
fn a_matrix_larger_than_the_binding_limit_is_split_into_row_blocks() {
    let options = GpuOptions {
        max_buffer_bytes: Some(4096),
        ..GpuOptions::default()
    };
    let gpu = pollster::block_on(Gpu::with_options(options)).unwrap();
    for (element, rows, cols, block_rows) in [
        (Element::F32, 50, 30, 34),
        (Element::F16, 100, 30, 68),
        (Element::Int8, 300, 30, 136),
    ] {
        let values = common::random_vec(&mut StdRng::seed_from_u64(5), rows * cols, 1.0);
        let mut writer = TensorWriter::new(&gpu, "w", element, &[rows, cols]).unwrap();
        for block in values.chunks(7 * cols) {
            writer.rows(block).unwrap();
        }
        let blocks = writer.finish().unwrap();
        assert_eq!(blocks.shape, [rows, cols]);
        assert_eq!(blocks.parts.len(), rows.div_ceil(block_rows), "{element:?}");
        for (first, part) in blocks.blocks() {
            let n = part.shape[0];
            assert_eq!(n, block_rows.min(rows - first), "{element:?}");
            let piece = &values[first * cols..(first + n) * cols];
            let alone = match element {
                Element::F32 => Tensor::upload_f32(&gpu, "w", piece, &[n, cols]),
                Element::F16 => Tensor::upload_f16(&gpu, "w", piece, &[n, cols]),
                Element::Int8 => {
                    let (q, s) = quantize_rows(piece, cols);
                    Tensor::upload_int8(&gpu, "w", &q, &s, &[n, cols])
                }
            }
            .unwrap();
            assert_eq!(
                words(&gpu, &part.buffer),
                words(&gpu, &alone.buffer),
                "{element:?}"
            );
            assert_eq!(
                scales(part).map(|b| words(&gpu, b)),
                scales(&alone).map(|b| words(&gpu, b))
            );
        }
    }
    let wide = TensorWriter::new(&gpu, "wide", Element::F32, &[2, 2000])
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        wide,
        "maxStorageBufferBindingSize of this device is 4096, but one row of wide needs 8000"
    );
    let mut one = TensorWriter::new(&gpu, "bias", Element::F32, &[2000]).unwrap();
    one.rows(&[0.0; 2000]).unwrap();
    let message = one.finish_one().unwrap_err().to_string();
    assert!(message.ends_with("but bias needs 8000"), "{message}");
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
    assert_eq!((spec.vocab_size, spec.decoder.width), (70000, 64));
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
