//! config.json becomes one model description; bad configs fail naming the field.

mod common;

use seq2seq_gpu::formats::config_json::spec_from_config_json;
use seq2seq_gpu::model::ModelSpec;
use seq2seq_gpu::model::spec::{Family, Positions, Sinusoids};
use seq2seq_gpu::ops::{Activation, NormKind};

fn config(name: &str) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(common::fixture::dir(name).join("config.json")).unwrap(),
    )
    .unwrap()
}

fn spec(name: &str) -> ModelSpec {
    spec_from_config_json(&config(name).to_string()).unwrap()
}

#[test]
fn each_family_is_described_by_data() {
    let t5 = spec("t5-tiny");
    assert_eq!(
        (t5.family, t5.norm, t5.pre_norm, t5.activation, t5.gated_ffn),
        (Family::T5, NormKind::RmsNorm, true, Activation::Relu, false)
    );
    assert_eq!(t5.lm_head_scale, 0.125);
    assert!(matches!(
        t5.positions,
        Positions::RelativeBuckets {
            num_buckets: 32,
            max_distance: 128
        }
    ));

    let flan = spec("flan-t5-tiny");
    assert_eq!(
        (flan.activation, flan.gated_ffn, flan.lm_head_scale),
        (Activation::GeluTanh, true, 1.0)
    );
    assert_eq!((flan.encoder.layers, flan.decoder.layers), (3, 2));

    let bart = spec("bart-tiny");
    assert_eq!(
        (
            bart.pre_norm,
            bart.embedding_norm,
            bart.final_norm,
            bart.logits_bias
        ),
        (false, true, false, true)
    );
    assert_eq!(
        bart.positions,
        Positions::Learned {
            offset: 2,
            limit: 256
        }
    );
    assert_eq!(
        (bart.activation, bart.encoder.embed_scale, bart.norm),
        (Activation::Gelu, 1.0, NormKind::LayerNorm)
    );

    let marian = spec("marian-tiny");
    assert_eq!(
        (marian.pre_norm, marian.embedding_norm, marian.activation),
        (false, false, Activation::Silu)
    );
    assert_eq!(
        marian.positions,
        Positions::Sinusoidal {
            offset: 0,
            limit: 256,
            layout: Sinusoids::Marian
        }
    );
    assert_eq!(
        (marian.decoder.embed_scale, marian.decoder_start_token_id),
        (8.0, 2)
    );

    let mbart = spec("mbart-tiny");
    assert_eq!(
        (mbart.pre_norm, mbart.embedding_norm, mbart.final_norm),
        (true, true, true)
    );

    let m2m = spec("m2m100-tiny");
    assert_eq!(
        (
            m2m.pre_norm,
            m2m.embedding_norm,
            m2m.final_norm,
            m2m.logits_bias
        ),
        (true, false, true, false)
    );
    assert_eq!(
        m2m.positions,
        Positions::Sinusoidal {
            offset: 2,
            limit: 256,
            layout: Sinusoids::Fairseq
        }
    );
}

#[track_caller]
fn assert_config_error(
    name: &str,
    edit: impl Fn(&mut serde_json::Map<String, serde_json::Value>),
    needle: &str,
) {
    let mut value = config(name);
    edit(value.as_object_mut().unwrap());
    let message = spec_from_config_json(&value.to_string())
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("config.json: ") && message.contains(needle),
        "{message}"
    );
}

#[test]
fn bad_configs_fail_naming_the_field() {
    assert_config_error(
        "t5-tiny",
        |c| {
            c.insert("model_type".into(), "gpt2".into());
        },
        "unsupported model_type \"gpt2\"",
    );
    assert_config_error(
        "t5-tiny",
        |c| {
            c.remove("model_type");
        },
        "\"model_type\"",
    );
    assert_config_error(
        "t5-tiny",
        |c| {
            c.remove("d_kv");
        },
        "missing field \"d_kv\"",
    );
    assert_config_error(
        "t5-tiny",
        |c| {
            c.insert("num_heads".into(), "four".into());
        },
        "\"num_heads\" must be a non-negative integer",
    );
    assert_config_error(
        "t5-tiny",
        |c| {
            c.insert("feed_forward_proj".into(), "gated-mish".into());
        },
        "\"feed_forward_proj\"",
    );
    assert_config_error(
        "bart-tiny",
        |c| {
            c.insert("encoder_attention_heads".into(), 5.into());
        },
        "not divisible by \"encoder_attention_heads\" 5",
    );
    assert_config_error(
        "bart-tiny",
        |c| {
            c.remove("decoder_ffn_dim");
        },
        "missing field \"decoder_ffn_dim\"",
    );
    assert_config_error(
        "bart-tiny",
        |c| {
            c.insert("activation_function".into(), "mish".into());
        },
        "activation function \"mish\"",
    );
    assert_config_error(
        "marian-tiny",
        |c| {
            c.insert("decoder_start_token_id".into(), 100000.into());
        },
        "\"decoder_start_token_id\"",
    );
    assert_config_error(
        "m2m100-tiny",
        |c| {
            c.insert("d_model".into(), 0.into());
        },
        "d_model",
    );
    let not_json = spec_from_config_json("{ not json").unwrap_err().to_string();
    assert!(
        not_json.starts_with("config.json: not valid JSON"),
        "{not_json}"
    );
}

/// A T5Gemma config that leaves the optional keys out gets transformers'
/// T5GemmaModuleConfig defaults; null soft caps switch them off.
#[test]
fn t5gemma_configs_take_transformers_defaults() {
    let stack = serde_json::json!({
        "hidden_size": 64, "num_attention_heads": 8, "num_hidden_layers": 3,
        "intermediate_size": 128, "vocab_size": 100,
    });
    let config = serde_json::json!({ "model_type": "t5gemma", "encoder": stack, "decoder": stack });
    let spec = spec_from_config_json(&config.to_string()).unwrap();
    let expected_windows = vec![Some(4096), None, Some(4096)];
    for stack in [&spec.encoder, &spec.decoder] {
        assert_eq!((stack.kv_heads, stack.head_dim), (4, 256));
        assert_eq!(stack.windows, expected_windows);
        assert_eq!(stack.embed_scale, 8.0);
    }
    assert_eq!(spec.query_scalar, Some(256.0));
    assert_eq!(
        (spec.attention_softcap, spec.logits_softcap),
        (Some(50.0), Some(30.0))
    );
    let mut capless = stack.clone();
    capless["attn_logit_softcapping"] = serde_json::Value::Null;
    capless["final_logit_softcapping"] = serde_json::Value::Null;
    let config =
        serde_json::json!({ "model_type": "t5gemma", "encoder": capless, "decoder": capless });
    let spec = spec_from_config_json(&config.to_string()).unwrap();
    assert_eq!((spec.attention_softcap, spec.logits_softcap), (None, None));
    let mut unknown_rope = stack.clone();
    unknown_rope["rope_parameters"] = serde_json::json!({ "rope_type": "yarn", "rope_theta": 1e4 });
    let config =
        serde_json::json!({ "model_type": "t5gemma", "encoder": unknown_rope, "decoder": stack });
    let error = spec_from_config_json(&config.to_string())
        .unwrap_err()
        .to_string();
    assert!(error.contains("yarn"), "{error}");
}
