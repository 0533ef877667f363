//! The Marian `.bin` parser against the bundled model and against built, broken files.

use super::*;

const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/enpt/model.enpt.intgemm.alphas.bin"
);

fn real() -> MarianBin {
    let bytes = std::fs::read(REAL).unwrap_or_else(|e| panic!("cannot read {REAL}: {e}"));
    MarianBin::parse("model.enpt.intgemm.alphas.bin", bytes).unwrap()
}

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[test]
fn real_file_layout() {
    let m = real();
    assert_eq!(m.names().count(), 195);
    assert!(m.yaml().contains("dec-cell: ssru"));
    assert!(!m.yaml().ends_with('\0'));
    assert_eq!(m.shape("Wemb").unwrap(), [32000, 256]);
    assert_eq!(m.shape("encoder_l1_ffn_W1").unwrap(), [256, 1536]);
    assert_eq!(m.shape("encoder_l1_ffn_b1").unwrap(), [1, 1536]);
    assert_eq!(m.shape("decoder_ff_logit_out_b").unwrap(), [1, 32000]);
    assert!(m.contains("decoder_l2_ffn_ffn_ln_scale"));
    assert!(!m.contains("Wemb_nonexistent"));
    let int8 = m.names().filter(|n| m.int8(n).is_ok_and(|q| q.is_some()));
    assert_eq!(int8.count(), 54);
    assert!(matches!(
        m.shape("nope"),
        Err(Error::MissingTensor { name, .. }) if name == "nope"
    ));
    let err = m.f32("special:model.yml").unwrap_err().to_string();
    assert!(err.contains("model.enpt.intgemm.alphas.bin") && err.contains("string"));
}

// Expected numbers come from /work/bergamot/numpy_ref.py's reader (stored order).
#[test]
fn real_file_values() {
    let m = real();
    let (wemb, mult) = m.int8("Wemb").unwrap().unwrap();
    assert_eq!(wemb.len(), 32000 * 256);
    assert!(close(mult, 153.830_02), "{mult}");
    assert_eq!(wemb[..5], [18, 3, 4, 6, 0]);
    assert_eq!(wemb[wemb.len() - 3..], [-1, -5, -39]);
    assert_eq!(wemb.iter().map(|&v| i64::from(v)).sum::<i64>(), -2_790_378);
    let wemb_f32 = m.f32("Wemb").unwrap();
    assert!(close(wemb_f32[0], 0.117_012_27));
    assert!(close(wemb_f32[8_191_999], -0.253_526_6));

    // Stored [out, in] row-major: the first bytes are the first output's weights.
    let (w1, mult) = m.int8("encoder_l1_ffn_W1").unwrap().unwrap();
    assert!(close(mult, 239.739_32), "{mult}");
    assert_eq!(w1[..4], [17, 11, 2, -26]);
    assert_eq!(w1[w1.len() - 2..], [-17, 10]);
    let w1_f32 = m.f32("encoder_l1_ffn_W1").unwrap();
    assert!(close(w1_f32[0], 0.070_910_357));
    assert!(close(w1_f32[3], -0.108_451_13));

    let b1 = m.f32("encoder_l1_ffn_b1").unwrap();
    assert!(m.int8("encoder_l1_ffn_b1").unwrap().is_none());
    assert_eq!(b1.len(), 1536);
    assert!(close(b1[0], -0.737_702_3) && close(b1[1535], -0.491_713_97));
    let sum: f64 = b1.iter().map(|&v| f64::from(v)).sum();
    assert!((sum - -753.501_885).abs() < 1e-3, "{sum}");

    let out_b = m.f32("decoder_ff_logit_out_b").unwrap();
    assert!(close(out_b[1], -15.324_212));
    let sum: f64 = out_b.iter().map(|&v| f64::from(v)).sum();
    assert!((sum - -50_736.944_69).abs() < 1e-2, "{sum}");

    // The output layer's activation alpha, stored both int8-coded and as f32.
    let alpha = m.f32("Wemb_QuantMultA").unwrap();
    assert!(close(alpha[0], 8.778_423), "{alpha:?}");
    assert!(close(m.f32("none_QuantMultA").unwrap()[0], 8.778_423));
}

// ---- a tiny synthetic file, written the way Marian's saveItems writes one ----

struct Item {
    name: &'static str,
    type_code: u64,
    shape: Vec<i32>,
    data: Vec<u8>,
}

fn pad_block(mut data: Vec<u8>, fill: u8) -> Vec<u8> {
    data.resize(data.len().div_ceil(ALIGN).max(1) * ALIGN, fill);
    data
}

fn int8_item(name: &'static str, shape: Vec<i32>, multiplier: f32) -> Item {
    let n: i32 = shape.iter().product();
    let mut data: Vec<u8> = (0..n).map(|i| (i * 7 - 20) as i8 as u8).collect();
    data.extend(multiplier.to_le_bytes());
    // Garbage padding, like the real file's: the parser must not read it.
    let data = pad_block(data, 0xAB);
    Item {
        name,
        type_code: TYPE_INTGEMM8,
        shape,
        data,
    }
}

fn f32_item(name: &'static str, shape: Vec<i32>) -> Item {
    let n: i32 = shape.iter().product();
    let data = (0..n).flat_map(|i| (i as f32 * 0.5 - 1.0).to_le_bytes());
    Item {
        name,
        type_code: TYPE_F32,
        shape,
        data: pad_block(data.collect(), 0),
    }
}

fn str_item(name: &'static str, text: &str) -> Item {
    let mut data = text.as_bytes().to_vec();
    data.push(0);
    Item {
        name,
        type_code: TYPE_STRING,
        shape: vec![data.len() as i32],
        data,
    }
}

fn build(items: &[Item]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(VERSION.to_le_bytes());
    out.extend((items.len() as u64).to_le_bytes());
    for item in items {
        for field in [
            item.name.len() as u64 + 1,
            item.type_code,
            item.shape.len() as u64,
            item.data.len() as u64,
        ] {
            out.extend(field.to_le_bytes());
        }
    }
    for item in items {
        out.extend(item.name.as_bytes());
        out.push(0);
    }
    for item in items {
        out.extend(item.shape.iter().flat_map(|d| d.to_le_bytes()));
    }
    let padding = ALIGN - (out.len() + 8) % ALIGN;
    out.extend((padding as u64).to_le_bytes());
    out.resize(out.len() + padding, 0);
    for item in items {
        out.extend(&item.data);
    }
    out
}

fn tiny_items() -> Vec<Item> {
    vec![
        int8_item("Wemb", vec![4, 2], 10.0),
        int8_item("a_W", vec![2, 3], 0.5),
        f32_item("a_b", vec![1, 3]),
        f32_item("ln", vec![1, 2]),
        str_item("special:extra", "x"),
        str_item(YAML_NAME, "dec-cell: ssru\n"),
    ]
}

fn tiny() -> Vec<u8> {
    build(&tiny_items())
}

fn parse(bytes: Vec<u8>) -> Result<MarianBin> {
    MarianBin::parse("tiny.bin", bytes)
}

/// Parsing fails, and the message names the file and contains `needle`.
fn fails(bytes: Vec<u8>, needle: &str) {
    let message = match parse(bytes) {
        Ok(_) => panic!("parsed, expected an error about {needle:?}"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("tiny.bin"), "{message}");
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
}

/// Where the u64 padding length sits: after the headers, names and shapes.
fn shapes_end(items: &[Item]) -> usize {
    let per_item = |i: &Item| 32 + i.name.len() + 1 + 4 * i.shape.len();
    16 + items.iter().map(per_item).sum::<usize>()
}

fn patch_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Offset of field `field` (0 name_len, 1 type, 2 shape_len, 3 data_len) of header `i`.
fn header_field(i: usize, field: usize) -> usize {
    16 + 32 * i + 8 * field
}

#[test]
fn tiny_round_trip() {
    let m = parse(tiny()).unwrap();
    assert_eq!(m.yaml(), "dec-cell: ssru\n");
    let names: Vec<_> = m.names().collect();
    assert_eq!(
        names,
        ["Wemb", "a_W", "a_b", "ln", "special:extra", YAML_NAME]
    );
    assert_eq!(m.shape("a_W").unwrap(), [2, 3]);
    let (values, mult) = m.int8("a_W").unwrap().unwrap();
    assert_eq!(values, [-20, -13, -6, 1, 8, 15]);
    assert_eq!(mult, 0.5);
    assert_eq!(
        m.f32("a_W").unwrap(),
        [-40.0, -26.0, -12.0, 2.0, 16.0, 30.0]
    );
    assert_eq!(m.f32("a_b").unwrap(), [-1.0, -0.5, 0.0]);
    assert_eq!(
        m.data("ln").unwrap(),
        MarianTensorData::F32(vec![-1.0, -0.5])
    );
    assert!(m.int8("special:extra").is_err());
}

#[test]
fn every_truncation_fails() {
    let bytes = tiny();
    for len in 0..bytes.len() {
        assert!(
            parse(bytes[..len].to_vec()).is_err(),
            "prefix of {len} bytes parsed"
        );
    }
    fails(bytes[..210].to_vec(), "file is only 210 bytes");
}

#[test]
fn bad_headers() {
    let mut bytes = tiny();
    patch_u64(&mut bytes, 0, 2);
    fails(bytes, "version 2");

    let mut bytes = tiny();
    patch_u64(&mut bytes, 8, u64::MAX);
    fails(bytes, "tensor headers do not fit");

    let mut bytes = tiny();
    patch_u64(&mut bytes, header_field(1, 0), 1 << 40);
    fails(bytes, "the name of tensor 1 needs");

    let mut bytes = tiny();
    patch_u64(&mut bytes, header_field(2, 2), u64::MAX);
    fails(bytes, "impossible length");

    let mut bytes = tiny();
    patch_u64(&mut bytes, header_field(0, 3), u64::MAX);
    fails(bytes, "data of tensor \"Wemb\"");

    let mut bytes = tiny();
    bytes.push(0);
    fails(bytes, "1 unexpected bytes");
}

#[test]
fn bad_names() {
    let names_start = 16 + 32 * tiny_items().len();
    let mut bytes = tiny();
    bytes[names_start + 4] = b'x'; // the NUL after "Wemb"
    fails(bytes, "not NUL-terminated");

    let mut bytes = tiny();
    bytes[names_start] = 0xFF;
    fails(bytes, "not UTF-8");

    let mut bytes = tiny();
    bytes[names_start + 1] = 0;
    fails(bytes, "contains a NUL");

    let mut items = tiny_items();
    items[3].name = "a_b";
    fails(build(&items), "duplicate tensor \"a_b\"");
}

#[test]
fn bad_shapes_and_blocks() {
    let mut items = tiny_items();
    items[2].shape = vec![1, 0];
    fails(build(&items), "non-positive dimension in shape [1, 0]");

    let mut items = tiny_items();
    items[2].shape = vec![-3];
    fails(build(&items), "non-positive");

    let mut items = tiny_items();
    items[2].shape = vec![];
    fails(build(&items), "empty shape");

    let mut items = tiny_items();
    items[2].shape = vec![i32::MAX, i32::MAX, i32::MAX];
    fails(build(&items), "overflows");

    let mut items = tiny_items();
    items[0].shape = vec![i32::MAX, 3];
    fails(build(&items), "need");

    let mut items = tiny_items();
    items[3].data.truncate(7); // 2 f32 need 8 bytes
    fails(
        build(&items),
        "2 elements need 8 bytes, but the block has 7",
    );

    let mut items = tiny_items();
    items[1].data.truncate(6 + 3); // no room for the whole multiplier
    fails(build(&items), "need 10 bytes");

    let mut items = tiny_items();
    items[3].data = vec![0; 4096];
    fails(build(&items), "at most 512 expected");

    let mut items = tiny_items();
    items[2].type_code = 0x0202;
    fails(build(&items), "unsupported type 0x0202");

    for multiplier in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let mut items = tiny_items();
        items[1] = int8_item("a_W", vec![2, 3], multiplier);
        fails(build(&items), "multiplier");
    }
}

#[test]
fn bad_padding_and_yaml() {
    let mut bytes = tiny();
    patch_u64(&mut bytes, shapes_end(&tiny_items()), 3);
    fails(bytes, "padding length 3");

    let mut items = tiny_items();
    items.pop();
    fails(build(&items), "no \"special:model.yml\"");

    let mut items = tiny_items();
    items[5] = f32_item(YAML_NAME, vec![1]);
    fails(build(&items), "is not a string");

    let mut items = tiny_items();
    items[5].data[0] = 0xC3; // a truncated UTF-8 sequence
    fails(build(&items), "is not UTF-8");
}

#[test]
fn unaligned_v1_files_parse() {
    // Writers from before the 256-byte alignment wrote a padding length of 0.
    let items = tiny_items();
    let mut bytes = build(&items)[..shapes_end(&items)].to_vec();
    bytes.extend(0u64.to_le_bytes());
    bytes.extend(items.iter().flat_map(|i| i.data.iter()));
    let m = parse(bytes).unwrap();
    assert_eq!(m.f32("a_b").unwrap(), [-1.0, -0.5, 0.0]);
    assert_eq!(m.yaml(), "dec-cell: ssru\n");
}

/// Random byte mutations must give Ok or Err, never a panic, and so must the accessors.
#[test]
fn random_mutations_never_panic() {
    let original = tiny();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let mut bytes = original.clone();
        let edits = 1 + next() % 4;
        for _ in 0..edits {
            // Half the edits hit the header region, where the lengths live.
            let span = if next() % 2 == 0 { 600 } else { bytes.len() };
            let at = (next() % span as u64) as usize;
            if next() % 4 == 0 && at + 8 <= bytes.len() {
                let value = next() >> (next() % 64);
                patch_u64(&mut bytes, at, value);
            } else {
                bytes[at] = next() as u8;
            }
        }
        if let Ok(m) = parse(bytes) {
            let names: Vec<String> = m.names().map(str::to_string).collect();
            for name in &names {
                let _ = (m.shape(name), m.f32(name), m.int8(name), m.data(name));
            }
            let _ = m.yaml();
        }
    }
}
