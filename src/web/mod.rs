//! The JavaScript API (wasm32 only), in the style of transformers.js:
//!
//! ```js
//! import init, { Engine } from "seq2seq-gpu";
//! await init();
//! const engine = await Engine.load("https://host/model/", { onProgress: (p) => {} });
//! for await (const piece of engine.generate("text", { maxNewTokens: 64, signal })) { ... }
//! engine.dispose();
//! ```
//! Every failure reaches JS as an `Error` with a message; nothing here panics.

mod js;
mod lent;
mod many;
mod options;
mod picked;
mod sources;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Promise};
use wasm_bindgen::prelude::*;

use crate::engine::{Engine, LoadOptions};
use crate::formats::FileSource;
use crate::formats::hub::model_url;
use crate::generate::{Generated, Generation};
use crate::gpu::{GpuOptions, MIN_BUFFER_BYTES};
use crate::model::WeightFormat;
use js::{field, function_field, set};
use lent::Lent;
use picked::PickedFiles;
use sources::{LoadedFile, Progress, UrlSource};

#[wasm_bindgen(module = "/src/web/iterable.js")]
extern "C" {
    #[wasm_bindgen(js_name = asyncIterable)]
    fn async_iterable(stream: TextStream) -> JsValue;
    #[wasm_bindgen(js_name = asyncIterable)]
    fn async_iterable_many(stream: many::ManyStream) -> JsValue;
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = include_str!("types.d.ts");

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The `weights` load option; `None` keeps the checkpoint's own precision.
fn weight_format(options: &JsValue) -> Result<Option<WeightFormat>, JsError> {
    match field(options, "weights").map(|v| v.as_string()) {
        None => Ok(None),
        Some(Some(s)) => WeightFormat::parse(&s).map(Some).map_err(js_error),
        Some(None) => Err(js_error(
            "option weights must be \"f32\", \"f16\" or \"int8\"",
        )),
    }
}

/// The `maxBufferBytes` load option: a buffer limit below the adapter's.
fn max_buffer_bytes(options: &JsValue) -> Result<Option<u64>, JsError> {
    let Some(value) = field(options, "maxBufferBytes") else {
        return Ok(None);
    };
    match value.as_f64() {
        Some(n)
            if n.fract() == 0.0 && (MIN_BUFFER_BYTES as f64..=MAX_SAFE_INTEGER).contains(&n) =>
        {
            Ok(Some(n as u64))
        }
        _ => Err(js_error(format!(
            "option maxBufferBytes must be a whole number of bytes from {MIN_BUFFER_BYTES} to 2^53 - 1, found {}",
            match value.as_f64() {
                Some(n) => n.to_string(),
                None => value.as_string().map_or_else(
                    || "a value that is not a number".into(),
                    |s| format!("{s:?}")
                ),
            }
        ))),
    }
}

/// The largest whole number a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

async fn create_engine(source: &impl FileSource, options: &JsValue) -> Result<Engine, JsError> {
    let load = LoadOptions {
        weights: weight_format(options)?,
        gpu: None,
        gpu_options: GpuOptions {
            max_buffer_bytes: max_buffer_bytes(options)?,
            ..GpuOptions::default()
        },
    };
    Engine::load(source, &load).await.map_err(js_error)
}

fn js_error(message: impl std::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

/// A model loaded on the GPU, with its tokenizer.
#[wasm_bindgen(js_name = Engine)]
pub struct JsEngine {
    engine: RefCell<Option<Engine>>,
    loaded: Vec<LoadedFile>,
}

#[wasm_bindgen(js_class = Engine)]
impl JsEngine {
    /// Loads a model folder from a base URL, or from the Hugging Face hub by id
    /// (`org/name`, optionally `@revision`).
    pub async fn load(
        #[wasm_bindgen(js_name = baseUrl)] base_url: String,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<JsEngine, JsError> {
        let options = JsValue::from(options);
        let use_cache = field(&options, "cache")
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        let progress = Progress::new(function_field(&options, "onProgress")?);
        let url = model_url(&base_url).map_err(js_error)?;
        let source = UrlSource::new(&url, use_cache, progress)
            .await
            .map_err(js_error)?;
        let engine = create_engine(&source, &options).await?;
        Ok(JsEngine {
            engine: RefCell::new(Some(engine)),
            loaded: source.fetched(),
        })
    }

    /// Loads a model from File objects a person picked (a folder's files).
    #[wasm_bindgen(js_name = loadFiles)]
    pub async fn load_files(
        files: Vec<web_sys::File>,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<JsEngine, JsError> {
        let options = JsValue::from(options);
        let progress = Progress::new(function_field(&options, "onProgress")?);
        let source = PickedFiles::new(files, progress);
        let engine = create_engine(&source, &options).await?;
        let loaded = source.read_files();
        Ok(JsEngine {
            engine: RefCell::new(Some(engine)),
            loaded,
        })
    }

    fn engine(&self) -> Result<Engine, JsError> {
        self.engine
            .borrow()
            .clone()
            .ok_or_else(|| js_error("this engine was disposed"))
    }

    /// The GPU adapter in use.
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> Result<String, JsError> {
        Ok(self.engine()?.gpu().adapter_description())
    }

    /// The language codes of a multilingual model (for `srcLang` and `tgtLang`), or
    /// undefined.
    #[wasm_bindgen(getter, unchecked_return_type = "string[] | undefined")]
    pub fn languages(&self) -> Result<JsValue, JsError> {
        Ok(match self.engine()?.tokenizer().languages() {
            Some(languages) => languages
                .codes()
                .map(JsValue::from_str)
                .collect::<js_sys::Array>()
                .into(),
            None => JsValue::UNDEFINED,
        })
    }

    /// The ids the model's tokenizer gives `text`, as the encoder receives them (special
    /// tokens included).
    pub fn tokenize(&self, text: String) -> Result<Vec<u32>, JsError> {
        self.engine()?.tokenizer().encode(&text).map_err(js_error)
    }

    /// Bytes of GPU work buffers the engine's pool has created: it stops growing once every
    /// shape in use has been seen (generations reuse its buffers).
    #[wasm_bindgen(getter, js_name = poolBytes)]
    pub fn pool_bytes(&self) -> Result<f64, JsError> {
        Ok(self.engine()?.gpu().pool_bytes() as f64)
    }

    /// The files this engine was loaded from, and whether each came from the cache.
    /// The largest weight buffer on this engine's device, in bytes (at most the binding
    /// limit: larger tensors are kept in row blocks).
    #[wasm_bindgen(getter, js_name = largestBinding)]
    pub fn largest_binding(&self) -> Result<f64, JsError> {
        Ok(self.engine()?.gpu().largest_weight_buffer() as f64)
    }

    #[wasm_bindgen(getter, js_name = loadedFiles, unchecked_return_type = "LoadedFile[]")]
    pub fn loaded_files(&self) -> JsValue {
        let list = js_sys::Array::new();
        for (file, bytes, from_cache) in &self.loaded {
            let entry = Object::new();
            set(&entry, "file", file.as_str());
            set(&entry, "bytes", *bytes as f64);
            set(&entry, "fromCache", *from_cache);
            list.push(&entry);
        }
        list.into()
    }

    /// Starts generating from `prompt`; iterate the result with `for await` for text pieces.
    #[wasm_bindgen(unchecked_return_type = "TextStream & AsyncIterableIterator<string>")]
    pub fn generate(
        &self,
        prompt: String,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateOptions")] options: Option<Object>,
    ) -> Result<JsValue, JsError> {
        let options = JsValue::from(options);
        let engine = self.engine()?;
        let generation_options = options::parse(&options)?;
        let signal = abort_signal(&options)?;
        let mut generation = engine
            .start(&prompt, &generation_options)
            .map_err(js_error)?;
        if let Some(on_token) = function_field(&options, "onToken")? {
            generation.on_token(move |id| {
                let _ = on_token.call1(&JsValue::NULL, &JsValue::from(id));
            });
        }
        let stream = TextStream {
            generation: Lent::new(generation, signal),
            results: Rc::default(),
        };
        Ok(async_iterable(stream))
    }

    /// Generates for many inputs (a document's lines or paragraphs) in batches of similar
    /// lengths; iterate the result with `for await` for `{ index, text, ids, sequences }`
    /// (or `{ index, error }` for an input that cannot be generated) as each input ends.
    /// Each output is what `generate` gives that input alone.
    #[wasm_bindgen(
        js_name = generateMany,
        unchecked_return_type = "ManyStream & AsyncIterableIterator<ManyResult>"
    )]
    pub fn generate_many(
        &self,
        inputs: Vec<String>,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateManyOptions")] options: Option<
            Object,
        >,
    ) -> Result<JsValue, JsError> {
        let options = JsValue::from(options);
        let engine = self.engine()?;
        let many_options = many::many_options(&options)?;
        let generation_options = options::parse_without(&options, &many::MANY_KEYS)?;
        let signal = abort_signal(&options)?;
        let generation = engine
            .generate_many(inputs, &generation_options, &many_options)
            .map_err(js_error)?;
        Ok(async_iterable_many(many::ManyStream::new(
            generation, signal,
        )))
    }

    /// Frees the model's GPU memory; the engine cannot be used afterwards.
    pub fn dispose(&self) {
        self.engine.borrow_mut().take();
    }
}

/// The `signal` option.
fn abort_signal(options: &JsValue) -> Result<Option<web_sys::AbortSignal>, JsError> {
    match field(options, "signal") {
        None => Ok(None),
        Some(v) => v
            .dyn_into::<web_sys::AbortSignal>()
            .map(Some)
            .map_err(|_| js_error("signal must be an AbortSignal")),
    }
}

/// The pieces of one generation, as an async iterator.
#[wasm_bindgen]
pub struct TextStream {
    generation: Lent<Generation>,
    /// Every returned sequence once finished (the best first).
    results: Rc<RefCell<Vec<Generated>>>,
}

fn ids_array(ids: &[u32]) -> JsValue {
    ids.iter()
        .map(|&id| JsValue::from(id))
        .collect::<js_sys::Array>()
        .into()
}

fn iterator_result(value: JsValue, done: bool) -> JsValue {
    let result = Object::new();
    set(&result, "value", value);
    set(&result, "done", done);
    result.into()
}

fn abort_error() -> JsValue {
    let error = js_sys::Error::new("the generation was aborted");
    error.set_name("AbortError");
    error.into()
}

#[wasm_bindgen]
impl TextStream {
    /// The next text piece: resolves to `{ value, done }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<IteratorResult<string, undefined>>")]
    pub fn next(&self) -> Promise {
        let lent = self.generation.clone();
        let results = self.results.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let Some(mut generation) = lent.take()? else {
                return Ok(iterator_result(JsValue::UNDEFINED, true));
            };
            match generation.next_piece().await {
                Some(Ok(text)) => {
                    lent.give_back(Some(generation));
                    Ok(iterator_result(JsValue::from_str(&text), false))
                }
                Some(Err(e)) => {
                    lent.give_back(None);
                    Err(js_error(e).into())
                }
                None => {
                    *results.borrow_mut() = generation.results().to_vec();
                    lent.give_back(None);
                    Ok(iterator_result(JsValue::UNDEFINED, true))
                }
            }
        })
    }

    /// Ends the generation early (a `break` out of `for await` calls this) and frees its
    /// GPU buffers.
    #[wasm_bindgen(
        js_name = "return",
        unchecked_return_type = "Promise<IteratorResult<string, undefined>>"
    )]
    pub fn finish(&self) -> Promise {
        // Dropping the generation gives its GPU buffers back.
        self.generation.stop();
        Promise::resolve(&iterator_result(JsValue::UNDEFINED, true))
    }

    /// The whole decoder sequence (decoder start token first), once the stream has ended.
    #[wasm_bindgen(getter, unchecked_return_type = "number[] | undefined")]
    pub fn ids(&self) -> JsValue {
        match self.results.borrow().first() {
            Some(r) => ids_array(&r.ids),
            None => JsValue::UNDEFINED,
        }
    }

    /// The generated text, once the stream has ended.
    #[wasm_bindgen(getter, unchecked_return_type = "string | undefined")]
    pub fn text(&self) -> JsValue {
        match self.results.borrow().first() {
            Some(r) => JsValue::from_str(&r.text),
            None => JsValue::UNDEFINED,
        }
    }

    /// Every returned sequence (numReturnSequences of them), once the stream has ended.
    #[wasm_bindgen(getter, unchecked_return_type = "number[][] | undefined")]
    pub fn sequences(&self) -> JsValue {
        let results = self.results.borrow();
        if results.is_empty() {
            return JsValue::UNDEFINED;
        }
        results
            .iter()
            .map(|r| ids_array(&r.ids))
            .collect::<js_sys::Array>()
            .into()
    }
}
