//! The command-line tool, run as a user would.

mod common;

use std::process::{Command, Output};

use common::fixture::{self, FAMILIES};

/// The CLI as a newcomer on a headless machine runs it: no display session.
fn cli_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seq2seq-gpu"))
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn cli(args: &[&str]) -> Output {
    cli_with_env(args, &[])
}

fn stderr_errors(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("adapter:"))
        .map(str::to_string)
        .collect()
}

/// A first run prints the adapter and the speed on stderr and nothing else: no lines from
/// Mesa's Vulkan layers before ours.
#[test]
fn a_headless_first_run_reads_clean() {
    let out = cli(&["Hello."]);
    assert!(out.status.success(), "{:?}", stderr_errors(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("adapter: "), "{lines:?}");
    assert!(lines[1].contains("tokens in"), "{lines:?}");
}

/// Without a GPU driver the one error line says how to get an adapter (Vulkan is the only
/// backend here, so pointing the loader at no driver leaves none).
#[cfg(target_os = "linux")]
#[test]
fn no_adapter_says_how_to_get_one() {
    let nothing = "/nonexistent/icd.json";
    let out = cli_with_env(
        &["Hello."],
        &[("VK_DRIVER_FILES", nothing), ("VK_ICD_FILENAMES", nothing)],
    );
    assert!(!out.status.success());
    let lines = stderr_errors(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("error: no usable GPU adapter")
            && lines[0].contains("apt-get install mesa-vulkan-drivers"),
        "{lines:?}"
    );
}

#[test]
fn json_ids_equal_transformers_greedy_ids() {
    for name in FAMILIES {
        let expected = fixture::expected_json(name);
        let dir = fixture::dir(name);
        for case in fixture::cases(&expected).iter().take(3) {
            let out = cli(&[
                "--model",
                dir.to_str().unwrap(),
                "--max-new-tokens",
                "48",
                "--json",
                case["text"].as_str().unwrap(),
            ]);
            assert!(out.status.success(), "{:?}", stderr_errors(&out));
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert_eq!(
                stdout.lines().count(),
                1,
                "--json prints one line: {stdout}"
            );
            let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(
                fixture::ids(&json["ids"]),
                fixture::ids(&case["greedy_ids"]),
                "{name}"
            );
            assert_eq!(json["text"], case["greedy_text"], "{name}");
        }
    }
}

/// Hub layouts through the CLI, as ../shared/tools/check_hub.py runs them: each case's own
/// `--src-lang`/`--tgt-lang`, the folder's defaults, and greedy decoding.
#[test]
fn hub_folders_generate_as_transformers_with_their_languages() {
    for name in [
        "mbart50",
        "opus-mt-spm",
        "bart-legacy",
        "m2m100-spm",
        "t5gemma",
    ] {
        let dir = fixture::dir("hub").join(name);
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        let case = &expected["cases"][0];
        let languages: Vec<&str> = case["cli"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let greedy = ["--max-new-tokens", "32", "--num-beams", "1"];
        for (mode, flags) in [("default", &[][..]), ("greedy", &greedy[..])] {
            let mut args = vec!["--model", dir.to_str().unwrap(), "--json"];
            args.extend(flags);
            args.extend(&languages);
            args.push(case["text"].as_str().unwrap());
            let out = cli(&args);
            assert!(out.status.success(), "{name}: {:?}", stderr_errors(&out));
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let eos = fixture::ids(&expected["eos_token_ids"]);
            let trim = |ids: Vec<u32>| match ids.iter().skip(1).position(|t| eos.contains(t)) {
                Some(at) => ids[..at + 2].to_vec(),
                None => ids,
            };
            assert_eq!(
                trim(fixture::ids(&json["ids"])),
                trim(fixture::ids(&case[format!("{mode}_ids")])),
                "{name} {mode}"
            );
            assert_eq!(json["text"], case[format!("{mode}_text")], "{name} {mode}");
        }
    }
}

#[test]
fn generation_flags_use_transformers_names_and_batches_return_sequences() {
    let name = "bart-tiny";
    let dir = fixture::dir(name);
    let expected = fixture::expected_json(name);
    let case = &fixture::cases(&expected)[0];
    // Beam search with two returned sequences, as in the fixture's processor entry.
    let entry = expected["processors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["case"] == 0 && e["options"]["num_return_sequences"] == 2)
        .unwrap();
    let out = cli(&[
        "--model",
        dir.to_str().unwrap(),
        "--json",
        "--max-new-tokens",
        "32",
        "--num-beams",
        "4",
        "--num-return-sequences",
        "2",
        "--length-penalty",
        "2.0",
        "--early-stopping",
        "false",
        case["text"].as_str().unwrap(),
    ]);
    assert!(out.status.success(), "{:?}", stderr_errors(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["sequences"], entry["sequences"]);
    assert_eq!(json["ids"], entry["sequences"][0]);

    // Several prompts form one padded batch.
    let batch = &expected["batch"];
    let mut args = vec![
        "--model",
        dir.to_str().unwrap(),
        "--json",
        "--max-new-tokens",
        "48",
    ];
    args.extend(
        batch["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap()),
    );
    let out = cli(&args);
    assert!(out.status.success(), "{:?}", stderr_errors(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["sequences"], batch["greedy_ids"]);

    // Processors by flag: bad words and a repetition penalty.
    for (flags, options) in [
        (
            vec!["--bad-words-ids", "[[56],[76]]"],
            serde_json::json!({ "bad_words_ids": [[56], [76]] }),
        ),
        (
            vec!["--repetition-penalty", "1.5"],
            serde_json::json!({ "repetition_penalty": 1.5 }),
        ),
    ] {
        let entry = expected["processors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["case"] == 1 && e["options"] == options)
            .unwrap();
        let text = fixture::cases(&expected)[1]["text"].as_str().unwrap();
        let mut args = vec![
            "--model",
            dir.to_str().unwrap(),
            "--json",
            "--max-new-tokens",
            "32",
        ];
        args.extend(flags);
        args.push(text);
        let out = cli(&args);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["ids"], entry["sequences"][0], "{options}");
    }
}

#[test]
fn f16_weights_flag_generates_the_reference_ids_where_margins_are_wide() {
    // bart-tiny's first case has wide top-2 margins, so f16 rounding cannot change a token.
    let name = "bart-tiny";
    let expected = fixture::expected_json(name);
    let case = &fixture::cases(&expected)[0];
    let dir = fixture::dir(name);
    let out = cli(&[
        "--model",
        dir.to_str().unwrap(),
        "--weights",
        "f16",
        "--json",
        "--max-new-tokens",
        "48",
        case["text"].as_str().unwrap(),
    ]);
    assert!(out.status.success(), "{:?}", stderr_errors(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ids"], case["greedy_ids"]);
}

/// The bundled English-to-Portuguese model translates as Firefox Translations' reference
/// engine does.
#[test]
fn default_model_translates_and_names_the_adapter() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture::dir("bergamot").join("reference.json")).unwrap(),
    )
    .unwrap();
    let first = &reference["enpt"][0];
    let out = cli(&[first["src"].as_str().unwrap()]);
    assert!(out.status.success(), "{:?}", stderr_errors(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim_end(), first["out"].as_str().unwrap());
    assert!(String::from_utf8_lossy(&out.stderr).contains("adapter: "));
}

/// Bad input of every kind: each gets one line on stderr starting with "error:" that names
/// the problem, and a non-zero exit, never a panic. docs/cli-errors.md lists these cases.
#[test]
fn errors_are_one_line_with_a_nonzero_exit() {
    let t5 = fixture::dir("t5-tiny");
    let t5 = t5.to_str().unwrap();
    let bart = fixture::dir("bart-tiny");
    let long_input = "word ".repeat(400);
    let bad_type =
        tempdir_with_config(|c| c.replace("\"model_type\": \"t5\"", "\"model_type\": \"gpt2\""));
    let no_heads = tempdir_with_config(|c| c.replace("\"num_heads\": 4,", ""));
    let not_json = tempdir_with_config(|_| "{ not json".to_string());
    let bad_tokenizer = tempdir_with_file("tokenizer.json", b"{\"model\": 3}");
    let cut_weights = tempdir_with_file("model.safetensors", &[200, 0, 0, 0, 0, 0, 0, 0, b'{']);
    let empty = tempdir_with_config(|c| c.to_string());
    std::fs::remove_file(empty.join("model.safetensors")).unwrap();
    let no_tokenizer = tempdir_with_config(|c| c.to_string());
    std::fs::remove_file(no_tokenizer.join("tokenizer.json")).unwrap();
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/models");
    let path = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--model".into(), models.into(), "hi".into()],
            "neither config.json nor a bergamot config",
        ),
        (
            vec!["--model".into(), path(&no_tokenizer), "hi".into()],
            "no tokenizer.json",
        ),
        (
            vec![
                "--model".into(),
                t5.into(),
                "--max-new-tokens".into(),
                "999999999".into(),
                "hi".into(),
            ],
            "maxStorageBufferBindingSize",
        ),
        (
            vec!["--early-stopping".into(), "sometimes".into(), "hi".into()],
            "\"early_stopping\" must be true, false or \"never\"",
        ),
        (
            vec![
                "--model".into(),
                path(&fixture::dir("hub").join("mbart50")),
                "--tgt-lang".into(),
                "pt".into(),
                "hi".into(),
            ],
            "unknown language code \"pt\" (this model's codes: ar_AR, cs_CZ,",
        ),
        (
            vec!["--src-lang".into(), "en".into(), "hi".into()],
            "this model's tokenizer has no language codes",
        ),
        (
            vec!["--model".into(), "/nonexistent/model".into(), "hi".into()],
            "/nonexistent/model",
        ),
        (
            vec!["--model".into(), path(&empty), "hi".into()],
            "no model.safetensors",
        ),
        (
            vec!["--model".into(), path(&bad_type), "hi".into()],
            "model_type \"gpt2\"",
        ),
        (
            vec!["--model".into(), path(&no_heads), "hi".into()],
            "\"num_heads\"",
        ),
        (
            vec!["--model".into(), path(&not_json), "hi".into()],
            "config.json",
        ),
        (
            vec!["--model".into(), path(&bad_tokenizer), "hi".into()],
            "tokenizer.json",
        ),
        (
            vec!["--model".into(), path(&cut_weights), "hi".into()],
            "model.safetensors",
        ),
        (
            vec!["--model".into(), path(&bart), long_input],
            "places at most 256",
        ),
        (vec!["--bogus-option".into(), "hi".into()], "--bogus-option"),
        (
            vec!["--max-new-tokens".into(), "many".into(), "hi".into()],
            "many",
        ),
        (
            vec![
                "--max-new-tokens".into(),
                "18446744073709551615".into(),
                "hi".into(),
            ],
            "too large",
        ),
        (
            vec![
                "--model".into(),
                t5.into(),
                "--max-new-tokens".into(),
                "9223372036854775807".into(),
                "--num-beams".into(),
                "4".into(),
                "hi".into(),
            ],
            "more than a decoder can hold",
        ),
        (vec![], "required"),
        (
            vec!["--num-beams".into(), "0".into(), "hi".into()],
            "num_beams",
        ),
        (
            vec![
                "--model".into(),
                t5.into(),
                "--num-beams".into(),
                "100000".into(),
                "hi".into(),
            ],
            "num_beams",
        ),
        (
            vec![
                "--do-sample".into(),
                "true".into(),
                "--top-p".into(),
                "1.5".into(),
                "hi".into(),
            ],
            "top_p",
        ),
        (
            vec![
                "--do-sample".into(),
                "true".into(),
                "--temperature".into(),
                "-1".into(),
                "hi".into(),
            ],
            "temperature",
        ),
        (
            vec!["--bad-words-ids".into(), "[5]".into(), "hi".into()],
            "bad_words_ids",
        ),
        (vec!["--seed".into(), "-1".into(), "hi".into()], "seed"),
        (
            vec!["--stop-strings".into(), "[1]".into(), "hi".into()],
            "stop_strings",
        ),
        (
            vec!["--eos-token-id".into(), "99999999".into(), "hi".into()],
            "outside the vocabulary",
        ),
        (vec!["--weights".into(), "f64".into(), "hi".into()], "f64"),
        (
            vec!["--num-beams".into(), "2".into(), "hi".into()],
            "beam search is not supported",
        ),
        (
            vec!["--max-length-factor".into(), "-1".into(), "hi".into()],
            "max_length_factor",
        ),
        (
            vec![
                "--model".into(),
                t5.into(),
                "--max-buffer-bytes".into(),
                "4096".into(),
                "hi".into(),
            ],
            "maxStorageBufferBindingSize of this device is 4096, but ",
        ),
        (
            vec!["--max-buffer-bytes".into(), "4095".into(), "hi".into()],
            "4095 is not in 4096..",
        ),
        (
            vec!["--truncation".into(), "maybe".into(), "hi".into()],
            "truncation",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli(&args);
        let shown: Vec<&str> = args
            .iter()
            .map(|a| if a.len() > 40 { "<long input>" } else { a })
            .collect();
        assert!(!out.status.success(), "{shown:?} succeeded");
        let lines = stderr_errors(&out);
        assert_eq!(lines.len(), 1, "{shown:?}: {lines:?}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(needle),
            "{shown:?}: {lines:?}"
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

/// A copy of the t5-tiny fixture with one file replaced.
fn tempdir_with_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = tempdir_with_config(|c| c.to_string());
    std::fs::write(dir.join(name), contents).unwrap();
    dir
}

/// A copy of the t5-tiny fixture with an edited config.json.
fn tempdir_with_config(edit: impl Fn(&str) -> String) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "seq2seq-cli-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture::dir("t5-tiny");
    for file in [
        "tokenizer.json",
        "model.safetensors",
        "generation_config.json",
    ] {
        std::fs::copy(src.join(file), dir.join(file)).unwrap();
    }
    let config = std::fs::read_to_string(src.join("config.json")).unwrap();
    std::fs::write(dir.join("config.json"), edit(&config)).unwrap();
    dir
}

/// The CLI's output for `input` fed on standard input.
fn cli_with_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_seq2seq-gpu"))
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout_lines(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{:?}", stderr_errors(out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `--input FILE|-` writes one output per input line, in input order, each what that line
/// gives alone (a blank line gives a blank line); `--json` one object per line with its
/// index; `--split-sentences` joins a paragraph's sentences translated one by one.
#[test]
fn input_lines_give_one_output_per_line_in_order() {
    let dir = fixture::dir("t5-tiny");
    let expected = fixture::expected_json("t5-tiny");
    let texts: Vec<String> = fixture::cases(&expected)
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect();
    let mut lines = texts.clone();
    lines.insert(1, String::new());
    let file = tempdir_with_file("inputs.txt", (lines.join("\n") + "\n").as_bytes());
    let file = file.join("inputs.txt");
    let model = dir.to_str().unwrap();
    let common = [
        "--model",
        model,
        "--max-new-tokens",
        "6",
        "--batch-size",
        "2",
    ];
    let alone = |text: &str| -> serde_json::Value {
        let out = cli(&["--model", model, "--max-new-tokens", "6", "--json", text]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let json = cli(&[&common[..], &["--json", "--input", file.to_str().unwrap()]].concat());
    let json: Vec<serde_json::Value> = stdout_lines(&json)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(json.len(), lines.len());
    for (i, (line, text)) in json.iter().zip(&lines).enumerate() {
        assert_eq!(line["index"], i);
        match text.is_empty() {
            true => assert_eq!(
                (&line["ids"], &line["text"]),
                (&serde_json::json!([]), &serde_json::json!(""))
            ),
            false => {
                let want = alone(text);
                assert_eq!(
                    (&line["ids"], &line["text"]),
                    (&want["ids"], &want["text"]),
                    "{text:?}"
                );
            }
        }
    }
    let plain = cli_with_stdin(
        &[&common[..], &["--input", "-"]].concat(),
        &lines.join("\n"),
    );
    let plain = stdout_lines(&plain);
    let texts_of_json: Vec<String> = json
        .iter()
        .map(|l| l["text"].as_str().unwrap().replace('\n', " "))
        .collect();
    assert_eq!(plain, texts_of_json);

    // The bundled model: a paragraph per line, translated sentence by sentence.
    let paragraphs = "Hello. I would like a cup of coffee, please.\n\nThank you!\n";
    let split = cli_with_stdin(&["--input", "-", "--split-sentences"], paragraphs);
    let translate = |s: &str| stdout_lines(&cli(&[s])).concat();
    assert_eq!(
        stdout_lines(&split),
        [
            format!(
                "{} {}",
                translate("Hello."),
                translate("I would like a cup of coffee, please.")
            ),
            String::new(),
            translate("Thank you!"),
        ]
    );
    // A missing file and a prompt beside --input are one-line errors.
    for args in [
        &["--input", "/nonexistent/inputs.txt"][..],
        &["--input", "-", "Hello."],
    ] {
        let out = cli(args);
        assert!(!out.status.success());
        let errors = stderr_errors(&out);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("error"), "{errors:?}");
    }
}
