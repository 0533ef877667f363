//! Command-line generation: streams text to stdout as it is produced.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use seq2seq_gpu::{Engine, GenerationOptions, ModelFiles, Result};

/// Generate text with an encoder-decoder model (T5, Flan-T5, ...) on the GPU.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Folder with config.json, tokenizer.json and model.safetensors (as on the Hugging Face
    /// hub). Without it, the bundled default model runs.
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Most tokens to generate (default: the model's generation_config.json).
    #[arg(long, value_name = "N")]
    max_new_tokens: Option<usize>,
    /// Print only one JSON line after generation: {"ids": [...], "text": "..."}.
    #[arg(long)]
    json: bool,
    /// The input text.
    prompt: String,
}

/// The model bundled into the binary, so the CLI works with no download.
fn default_model() -> ModelFiles {
    macro_rules! bundled {
        ($file:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/t5-tiny/",
                $file
            ))
        };
    }
    ModelFiles {
        config: String::from_utf8_lossy(bundled!("config.json")).into_owned(),
        generation_config: Some(
            String::from_utf8_lossy(bundled!("generation_config.json")).into_owned(),
        ),
        tokenizer: bundled!("tokenizer.json").to_vec(),
        weights: vec![(
            "model.safetensors".into(),
            bundled!("model.safetensors").to_vec(),
        )],
    }
}

fn run(cli: Cli) -> Result<()> {
    let files = match &cli.model {
        Some(dir) => ModelFiles::read_dir(dir)?,
        None => default_model(),
    };
    let engine = pollster::block_on(Engine::new(files))?;
    eprintln!("adapter: {}", engine.gpu().adapter_description());
    let options = GenerationOptions {
        max_new_tokens: cli.max_new_tokens,
    };
    let started = Instant::now();
    let mut stdout = std::io::stdout().lock();
    let generation = engine.start(&cli.prompt, &options)?;
    let out = pollster::block_on(generation.run(|piece| {
        if !cli.json {
            // A closed stdout (a pipe into `head`) must not abort generation with a panic.
            let _ = stdout
                .write_all(piece.as_bytes())
                .and_then(|_| stdout.flush());
        }
    }))?;
    let elapsed = started.elapsed().as_secs_f64();
    let generated = out.ids.len() - 1;
    if cli.json {
        let line = serde_json::json!({ "ids": out.ids, "text": out.text });
        let _ = writeln!(stdout, "{line}");
    } else {
        let _ = writeln!(stdout);
    }
    eprintln!(
        "{generated} tokens in {:.0} ms ({:.1} tokens/s)",
        elapsed * 1e3,
        generated as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

fn main() -> ExitCode {
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
