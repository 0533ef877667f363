//! Command-line generation: streams text to stdout as it is produced.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Arg, ArgAction, ArgMatches, Command};
use seq2seq_gpu::gpu::{GpuOptions, MIN_BUFFER_BYTES};
use seq2seq_gpu::model::WeightFormat;
use seq2seq_gpu::{
    DirSource, Engine, Generated, GenerationOptions, LoadOptions, MemorySource, Result,
};
use serde_json::{Map, Value};

mod cli;

use cli::{lines, many};

fn command() -> Command {
    let mut command = Command::new("seq2seq-gpu")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Generate text with an encoder-decoder model (T5, BART, Marian, mBART, M2M100) on the GPU")
        .arg(
            Arg::new("model")
                .long("model")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Folder with config.json, tokenizer.json and model.safetensors (as on the Hugging Face hub), or a Firefox Translations folder (a bergamot config.*.yml naming a Marian .bin model and shortlist, plus tokenizer.json); without it the bundled English-to-Portuguese model runs"),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print only one JSON line after generation: {\"ids\": [...], \"text\": \"...\"}, plus \"sequences\" and \"texts\" when several sequences result"),
        )
        .arg(
            Arg::new("weights")
                .long("weights")
                .value_name("FORMAT")
                .value_parser(["f32", "f16", "int8"])
                .help("Keep weights (linear layers, token embeddings, the LM head) on the GPU in f32, f16 (half the memory) or int8 (a quarter; one scale per row); arithmetic stays f32. Default: as the checkpoint stores them (int8 for Marian .bin models, f32 otherwise)"),
        )
        .arg(
            Arg::new("max-buffer-bytes")
                .long("max-buffer-bytes")
                .value_name("N")
                .value_parser(clap::value_parser!(u64).range(MIN_BUFFER_BYTES..))
                .help("Use GPU buffers of at most N bytes, as an adapter with that maxStorageBufferBindingSize would allow: checks that a model fits a smaller device"),
        )
        .arg(
            Arg::new("input")
                .long("input")
                .value_name("FILE")
                .conflicts_with("prompt")
                .help("Read one input per line from FILE (- for standard input) and write one output per line, in input order, as marian-decoder does; inputs of similar lengths are batched and each line's output equals generating it alone"),
        )
        .arg(
            Arg::new("batch-size")
                .long("batch-size")
                .value_name("B")
                .value_parser(clap::value_parser!(u64).range(1..=4096))
                .help("With --input or --split-sentences: inputs decoded side by side (default: chosen from the model and the adapter)"),
        )
        .arg(
            Arg::new("cache-blocks")
                .long("cache-blocks")
                .value_name("N")
                .value_parser(clap::value_parser!(u64).range(1..=1 << 24))
                .help("With --input or --split-sentences, greedy: blocks of 16 positions in each layer's paged self-attention cache, shared by the rows (default: half of each row's longest output, in whole blocks; rows that find it empty are decoded again later)"),
        )
        .arg(
            Arg::new("split-sentences")
                .long("split-sentences")
                .action(ArgAction::SetTrue)
                .help("Split each input into sentences, generate them one by one (batched), and join the outputs back"),
        )
        .arg(
            Arg::new("prompt")
                .required_unless_present("input")
                .num_args(1..)
                .help("The input text; several prompts form one batch"),
        );
    for &key in GenerationOptions::names() {
        let flag = key.replace('_', "-");
        command = command.arg(
            Arg::new(key)
                .long(flag)
                .value_name("VALUE")
                .allow_negative_numbers(true)
                .help(format!("transformers' generation option `{key}` (JSON values: numbers, true/false, lists like '[[5],[7]]')")),
        );
    }
    command
}

/// The generation flags as transformers' snake_case options, parsed and checked by the
/// same code that reads generation_config.json.
fn generation_options(matches: &ArgMatches) -> Result<GenerationOptions> {
    let mut map = Map::new();
    for &key in GenerationOptions::names() {
        if let Some(raw) = matches.get_one::<String>(key) {
            let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()));
            map.insert(key.to_string(), value);
        }
    }
    GenerationOptions::from_json(&map, "command line")
}

/// The model bundled into the binary, so the CLI translates with no download: Firefox
/// Translations' English-to-Portuguese "tiny" model (models/enpt, MPL-2.0), as its folder.
fn bundled_model() -> MemorySource {
    macro_rules! bundled {
        ($($file:literal),*) => {
            MemorySource::new("the bundled model (models/enpt)")
                $(.with($file, &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/enpt/", $file))[..]))*
        };
    }
    bundled!(
        "config.intgemm8bitalpha.yml",
        "tokenizer.json",
        "model.enpt.intgemm.alphas.bin",
        "lex.50.50.enpt.s2t.bin"
    )
}

fn run(matches: ArgMatches) -> Result<()> {
    let options = generation_options(&matches)?;
    let prompts: Vec<&str> = matches
        .get_many::<String>("prompt")
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let json = matches.get_flag("json");
    let load = LoadOptions {
        weights: match matches.get_one::<String>("weights") {
            Some(format) => Some(WeightFormat::parse(format)?),
            None => None,
        },
        gpu: None,
        gpu_options: GpuOptions {
            max_buffer_bytes: matches.get_one::<u64>("max-buffer-bytes").copied(),
            ..GpuOptions::default()
        },
    };
    let engine = match matches.get_one::<PathBuf>("model") {
        Some(dir) => pollster::block_on(Engine::load(&DirSource::new(dir)?, &load))?,
        None => pollster::block_on(Engine::load(&bundled_model(), &load))?,
    };
    eprintln!("adapter: {}", engine.gpu().adapter_description());
    if let Some(path) = matches.get_one::<String>("input") {
        let lines = lines::InputLines::open(path)?;
        return many::run(&engine, lines, &options, &matches);
    }
    if matches.get_flag("split-sentences") {
        let inputs = prompts.iter().map(|p| Ok(p.to_string()));
        return many::run(&engine, inputs, &options, &matches);
    }
    let started = Instant::now();
    let mut stdout = std::io::stdout().lock();
    let results: Vec<Generated> = if prompts.len() == 1 {
        let generation = engine.start(prompts[0], &options)?;
        pollster::block_on(generation.run(|piece| {
            if !json {
                // A closed stdout (a pipe into `head`) must not abort generation with a panic.
                let _ = stdout
                    .write_all(piece.as_bytes())
                    .and_then(|_| stdout.flush());
            }
        }))?
    } else {
        pollster::block_on(engine.generate_batch(&prompts, &options))?
    };
    let elapsed = started.elapsed().as_secs_f64();
    if json {
        let mut line = serde_json::json!({ "ids": results[0].ids, "text": results[0].text });
        if results.len() > 1 {
            line["sequences"] = results.iter().map(|r| r.ids.clone()).collect();
            line["texts"] = results.iter().map(|r| r.text.clone()).collect();
        }
        let _ = writeln!(stdout, "{line}");
    } else if prompts.len() == 1 {
        let _ = writeln!(stdout);
        for extra in &results[1..] {
            let _ = writeln!(stdout, "{}", extra.text);
        }
    } else {
        for result in &results {
            let _ = writeln!(stdout, "{}", result.text);
        }
    }
    let generated: usize = results.iter().map(|r| r.ids.len() - 1).sum();
    eprintln!(
        "{generated} tokens in {:.0} ms ({:.1} tokens/s)",
        elapsed * 1e3,
        generated as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

fn main() -> ExitCode {
    // SAFETY: the first thing main does, before any thread exists.
    unsafe { seq2seq_gpu::platform::quiet_headless_vulkan() };
    // Errors are values; this only keeps an unforeseen bug to one line without a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!(
            "error: internal error: {}",
            message.lines().next().unwrap_or("")
        );
    }));
    let matches = match command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.render().to_string();
            eprintln!(
                "{}",
                rendered.lines().next().unwrap_or("error: bad arguments")
            );
            return ExitCode::from(2);
        }
    };
    match run(matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
