//! `engine.generateMany(inputs, options)`: many inputs in one call, as an async iterator of
//! `{ index, text, ids, sequences }` objects in the order the inputs end (see
//! [`crate::document`]). A bad input gives `{ index, error }` and the others go on.

use js_sys::{Object, Promise};
use wasm_bindgen::prelude::*;

use super::js::{field, set};
use super::lent::Lent;
use super::{ids_array, iterator_result, js_error};
use crate::document::{Batching, Finished, ManyGeneration, ManyOptions};

/// Keys of `generateMany`'s options that are not generation settings.
pub const MANY_KEYS: [&str; 3] = ["batchSize", "splitSentences", "batching"];

/// `batchSize`, `splitSentences` and `batching`.
pub fn many_options(options: &JsValue) -> Result<ManyOptions, JsError> {
    let batch_size = match field(options, "batchSize") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(n) if n.fract() == 0.0 && (1.0..=4096.0).contains(&n) => Some(n as usize),
            _ => {
                return Err(js_error(
                    "option batchSize must be a whole number from 1 to 4096",
                ));
            }
        },
    };
    let split_sentences = match field(options, "splitSentences") {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| js_error("option splitSentences must be true or false"))?,
    };
    let batching = match field(options, "batching").map(|v| v.as_string()) {
        None => Batching::Auto,
        Some(Some(s)) if s == "auto" => Batching::Auto,
        Some(Some(s)) if s == "continuous" => Batching::Continuous,
        Some(Some(s)) if s == "static" => Batching::Static,
        Some(_) => {
            return Err(js_error(
                "option batching must be \"auto\", \"continuous\" or \"static\"",
            ));
        }
    };
    Ok(ManyOptions {
        batch_size,
        split_sentences,
        batching,
        cache_blocks: None,
    })
}

type Inputs = std::vec::IntoIter<String>;

/// The results of `generateMany`, as an async iterator.
#[wasm_bindgen]
pub struct ManyStream {
    generation: Lent<ManyGeneration<Inputs>>,
    batch_size: usize,
}

impl ManyStream {
    pub fn new(generation: ManyGeneration<Inputs>, signal: Option<web_sys::AbortSignal>) -> Self {
        ManyStream {
            batch_size: generation.batch_size(),
            generation: Lent::new(generation, signal),
        }
    }
}

fn result_object(finished: &Finished) -> JsValue {
    let object = Object::new();
    set(&object, "index", finished.index as f64);
    match &finished.results {
        Ok(results) => {
            if let Some(best) = results.first() {
                set(&object, "text", best.text.as_str());
                set(&object, "ids", ids_array(&best.ids));
            }
            let sequences: js_sys::Array = results.iter().map(|r| ids_array(&r.ids)).collect();
            set(&object, "sequences", sequences);
        }
        Err(e) => set(&object, "error", js_sys::Error::new(&e.to_string())),
    }
    object.into()
}

#[wasm_bindgen]
impl ManyStream {
    /// Rows decoded side by side.
    #[wasm_bindgen(getter, js_name = batchSize)]
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The next input to end: resolves to `{ value, done }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<IteratorResult<ManyResult, undefined>>")]
    pub fn next(&self) -> Promise {
        let lent = self.generation.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let Some(mut generation) = lent.take()? else {
                return Ok(iterator_result(JsValue::UNDEFINED, true));
            };
            match generation.next().await {
                Some(Ok(finished)) => {
                    lent.give_back(Some(generation));
                    Ok(iterator_result(result_object(&finished), false))
                }
                Some(Err(e)) => {
                    lent.give_back(None);
                    Err(js_error(e).into())
                }
                None => {
                    lent.give_back(None);
                    Ok(iterator_result(JsValue::UNDEFINED, true))
                }
            }
        })
    }

    /// Stops early (a `break` out of `for await` calls this) and frees the GPU buffers; the
    /// results already delivered stay valid.
    #[wasm_bindgen(
        js_name = "return",
        unchecked_return_type = "Promise<IteratorResult<ManyResult, undefined>>"
    )]
    pub fn finish(&self) -> Promise {
        self.generation.stop();
        Promise::resolve(&iterator_result(JsValue::UNDEFINED, true))
    }
}
