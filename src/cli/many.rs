//! `--input` and `--split-sentences`: many inputs through [`Engine::generate_many`], each
//! output on its own line in input order (a JSON object per line with `--json`), written as
//! soon as every earlier input's output is.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

use clap::ArgMatches;
use seq2seq_gpu::{Batching, Engine, Error, Finished, GenerationOptions, ManyOptions, Result};

pub fn run(
    engine: &Engine,
    inputs: impl Iterator<Item = Result<String>>,
    options: &GenerationOptions,
    matches: &ArgMatches,
) -> Result<()> {
    let many = ManyOptions {
        batch_size: matches.get_one::<u64>("batch-size").map(|&b| b as usize),
        split_sentences: matches.get_flag("split-sentences"),
        batching: Batching::Auto,
        cache_blocks: matches.get_one::<u64>("cache-blocks").map(|&b| b as usize),
    };
    let json = matches.get_flag("json");
    // A read error ends the inputs; it is reported once the inputs before it are written.
    let read_error: Rc<RefCell<Option<Error>>> = Rc::default();
    let inputs = {
        let read_error = read_error.clone();
        inputs.map_while(move |line| match line {
            Ok(line) => Some(line),
            Err(e) => {
                *read_error.borrow_mut() = Some(e);
                None
            }
        })
    };
    let started = Instant::now();
    let mut generation = engine.generate_many(inputs, options, &many)?;
    eprintln!("batch size: {}", generation.batch_size());
    let mut stdout = std::io::stdout().lock();
    let mut waiting = BTreeMap::new();
    let (mut written, mut tokens, mut failed) = (0, 0, 0);
    while let Some(finished) = pollster::block_on(generation.next()) {
        let finished = finished?;
        waiting.insert(finished.index, finished);
        while let Some(finished) = waiting.remove(&written) {
            if let Ok(results) = &finished.results {
                tokens += results
                    .iter()
                    .map(|r| r.ids.len().saturating_sub(1))
                    .sum::<usize>();
            }
            failed += usize::from(finished.results.is_err());
            // A closed stdout (a pipe into `head`) must not abort generation with a panic.
            let _ = writeln!(stdout, "{}", line(&finished, json)).and_then(|_| stdout.flush());
            written += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{written} inputs, {tokens} tokens in {:.0} ms ({:.1} inputs/s, {:.1} tokens/s)",
        elapsed * 1e3,
        written as f64 / elapsed.max(1e-9),
        tokens as f64 / elapsed.max(1e-9)
    );
    if let Some(e) = read_error.take() {
        return Err(e);
    }
    match failed {
        0 => Ok(()),
        n => Err(Error::InvalidArgument(format!(
            "{n} of {written} inputs could not be generated (their lines are empty)"
        ))),
    }
}

/// One output line: the text (line breaks as spaces, so that lines stay aligned with the
/// inputs), or with `--json` an object with the index, ids and text (or the error).
fn line(finished: &Finished, json: bool) -> String {
    match (&finished.results, json) {
        (Ok(results), false) => results
            .first()
            .map_or(String::new(), |r| r.text.replace(['\n', '\r'], " ")),
        (Err(e), false) => {
            eprintln!("error: input {}: {e}", finished.index + 1);
            String::new()
        }
        (Ok(results), true) => {
            let best = &results[0];
            let mut line =
                serde_json::json!({ "index": finished.index, "ids": best.ids, "text": best.text });
            if results.len() > 1 {
                line["sequences"] = results.iter().map(|r| r.ids.clone()).collect();
                line["texts"] = results.iter().map(|r| r.text.clone()).collect();
            }
            line.to_string()
        }
        (Err(e), true) => {
            serde_json::json!({ "index": finished.index, "error": e.to_string() }).to_string()
        }
    }
}
