//! Getting model files into memory in the browser: from a base URL (through the Cache API,
//! so a second visit does not download again) or from File objects a person picked.
//! Progress is reported in bytes as data arrives.

use js_sys::{Function, Object, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Cache, Response};

use super::js::{await_promise, set};
use crate::files::{BERGAMOT_CONFIGS, ModelData, ModelFiles, bergamot_manifest, shard_names};

const CACHE_NAME: &str = "seq2seq-gpu-models";

/// Reports `{ file, loaded, total }` (bytes over every file seen so far).
pub struct Progress {
    callback: Option<Function>,
    loaded: f64,
    total: f64,
}

impl Progress {
    pub fn new(callback: Option<Function>) -> Self {
        Progress {
            callback,
            loaded: 0.0,
            total: 0.0,
        }
    }

    fn expect(&mut self, bytes: f64) {
        self.total += bytes;
    }

    fn advance(&mut self, file: &str, bytes: f64) {
        self.loaded += bytes;
        if let Some(callback) = &self.callback {
            let event = Object::new();
            set(&event, "file", file);
            set(&event, "loaded", self.loaded);
            set(&event, "total", self.total.max(self.loaded));
            // A throwing progress callback must not abort the download.
            let _ = callback.call1(&JsValue::NULL, &event);
        }
    }
}

/// The global scope's fetch and caches, in a window or a worker.
enum Scope {
    Window(web_sys::Window),
    Worker(web_sys::WorkerGlobalScope),
}

impl Scope {
    fn current() -> Result<Scope, String> {
        let global = js_sys::global();
        if let Some(window) = global.dyn_ref::<web_sys::Window>() {
            Ok(Scope::Window(window.clone()))
        } else if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
            Ok(Scope::Worker(worker.clone()))
        } else {
            Err("no window or worker scope to fetch from".into())
        }
    }

    fn fetch(&self, url: &str) -> js_sys::Promise {
        match self {
            Scope::Window(w) => w.fetch_with_str(url),
            Scope::Worker(w) => w.fetch_with_str(url),
        }
    }

    /// The model cache, if this context offers the Cache API (secure contexts only).
    async fn cache(&self) -> Option<Cache> {
        let storage = match self {
            Scope::Window(w) => w.caches().ok()?,
            Scope::Worker(w) => w.caches().ok()?,
        };
        await_promise(storage.open(CACHE_NAME))
            .await
            .ok()?
            .dyn_into::<Cache>()
            .ok()
    }
}

pub struct UrlLoader {
    base: String,
    scope: Scope,
    cache: Option<Cache>,
    pub progress: Progress,
    /// (file, bytes, whether it came from the cache), in load order.
    pub fetched: Vec<(String, usize, bool)>,
}

impl UrlLoader {
    pub async fn new(
        base_url: &str,
        use_cache: bool,
        progress: Progress,
    ) -> Result<UrlLoader, String> {
        let scope = Scope::current()?;
        let cache = if use_cache { scope.cache().await } else { None };
        let mut base = base_url.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        Ok(UrlLoader {
            base,
            scope,
            cache,
            progress,
            fetched: Vec::new(),
        })
    }

    /// The file's bytes, or None if the server answers 404.
    async fn get(&mut self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let url = format!("{}{name}", self.base);
        if let Some(cache) = &self.cache
            && let Ok(hit) = await_promise(cache.match_with_str(&url)).await
            && let Ok(response) = hit.dyn_into::<Response>()
        {
            let bytes = self.read_body(name, &response).await?;
            self.fetched.push((name.to_string(), bytes.len(), true));
            return Ok(Some(bytes));
        }
        let response: Response = await_promise(self.scope.fetch(&url))
            .await
            .map_err(|e| format!("could not fetch {url}: {e}"))?
            .dyn_into()
            .map_err(|_| format!("fetch of {url} did not return a Response"))?;
        if response.status() == 404 {
            return Ok(None);
        }
        if !response.ok() {
            return Err(format!(
                "{url}: HTTP {} {}",
                response.status(),
                response.status_text()
            ));
        }
        let copy = match &self.cache {
            Some(_) => response.clone().ok(),
            None => None,
        };
        let bytes = self.read_body(name, &response).await?;
        if let (Some(cache), Some(copy)) = (&self.cache, copy) {
            // Storing is best effort: a full quota must not fail the load.
            let _ = await_promise(cache.put_with_str(&url, &copy)).await;
        }
        self.fetched.push((name.to_string(), bytes.len(), false));
        Ok(Some(bytes))
    }

    async fn required(&mut self, name: &str) -> Result<Vec<u8>, String> {
        self.get(name)
            .await?
            .ok_or_else(|| format!("{}{name}: not found (HTTP 404)", self.base))
    }

    async fn read_body(&mut self, name: &str, response: &Response) -> Result<Vec<u8>, String> {
        let length = response
            .headers()
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|v| v.parse::<f64>().ok());
        self.progress.expect(length.unwrap_or(0.0));
        let Some(body) = response.body() else {
            return Ok(Vec::new());
        };
        let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        let mut bytes = Vec::with_capacity(length.unwrap_or(0.0) as usize);
        loop {
            let chunk = await_promise(reader.read())
                .await
                .map_err(|e| format!("reading {name}: {e}"))?;
            let done = js_sys::Reflect::get(&chunk, &"done".into())
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            if done {
                break;
            }
            if let Ok(value) = js_sys::Reflect::get(&chunk, &"value".into()) {
                let array = Uint8Array::new(&value);
                let start = bytes.len();
                bytes.resize(start + array.length() as usize, 0);
                array.copy_to(&mut bytes[start..]);
                if length.is_none() {
                    self.progress.expect(array.length() as f64);
                }
                self.progress.advance(name, array.length() as f64);
            }
        }
        Ok(bytes)
    }

    /// Every file of a model folder: config, tokenizer, optional generation config, and
    /// the weights as one file or as the shards of an index; or, for a Firefox Translations
    /// folder, the bergamot config and the model and shortlist it names.
    pub async fn model_files(&mut self) -> Result<ModelFiles, String> {
        let Some(config) = self.get("config.json").await? else {
            return self.marian_files().await;
        };
        let config = text("config.json", config)?;
        let generation_config = match self.get("generation_config.json").await? {
            Some(bytes) => Some(text("generation_config.json", bytes)?),
            None => None,
        };
        let tokenizer = self.required("tokenizer.json").await?;
        let weights = match self.get("model.safetensors").await? {
            Some(bytes) => vec![("model.safetensors".to_string(), bytes)],
            None => {
                let index = text(
                    "model.safetensors.index.json",
                    self.required("model.safetensors.index.json").await?,
                )?;
                let mut shards = Vec::new();
                for name in shard_names(&index).map_err(|e| e.to_string())? {
                    let bytes = self.required(&name).await?;
                    shards.push((name, bytes));
                }
                shards
            }
        };
        Ok(ModelFiles {
            tokenizer,
            model: ModelData::HuggingFace {
                config,
                generation_config,
                weights,
            },
        })
    }

    async fn marian_files(&mut self) -> Result<ModelFiles, String> {
        for config in BERGAMOT_CONFIGS {
            if let Some(bytes) = self.get(config).await? {
                let manifest =
                    bergamot_manifest(config, &text(config, bytes)?).map_err(|e| e.to_string())?;
                let model = self.required(&manifest.model).await?;
                let shortlist = match &manifest.shortlist {
                    Some(name) => Some((name.clone(), self.required(name).await?)),
                    None => None,
                };
                return Ok(ModelFiles {
                    tokenizer: self.required("tokenizer.json").await?,
                    model: ModelData::Marian {
                        model: (manifest.model, model),
                        shortlist,
                        max_length_factor: manifest.max_length_factor,
                    },
                });
            }
        }
        Err(format!(
            "{}: neither config.json nor a bergamot config ({}) was found",
            self.base,
            BERGAMOT_CONFIGS.join(", ")
        ))
    }
}

fn text(name: &str, bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| format!("{name} is not UTF-8 text"))
}

/// Model files from File objects (a picked folder); matched by file name.
pub async fn from_files(
    files: Vec<web_sys::File>,
    progress: &mut Progress,
) -> Result<ModelFiles, String> {
    let mut read = Vec::new();
    for file in &files {
        progress.expect(file.size());
    }
    for file in files {
        let name = file.name();
        let buffer = await_promise(file.array_buffer())
            .await
            .map_err(|e| format!("reading {name}: {e}"))?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        progress.advance(&name, bytes.len() as f64);
        read.push((name, bytes));
    }
    let mut take = |name: &str| {
        read.iter()
            .position(|(n, _)| n == name)
            .map(|i| read.swap_remove(i).1)
    };
    let tokenizer = take("tokenizer.json").ok_or("tokenizer.json was not among the files")?;
    let Some(config) = take("config.json") else {
        let Some((config, yml)) = BERGAMOT_CONFIGS
            .iter()
            .find_map(|name| take(name).map(|bytes| (*name, bytes)))
        else {
            return Err(format!(
                "neither config.json nor a bergamot config ({}) was among the files",
                BERGAMOT_CONFIGS.join(", ")
            ));
        };
        let manifest = bergamot_manifest(config, &text(config, yml)?).map_err(|e| e.to_string())?;
        let model = take(&manifest.model)
            .ok_or_else(|| format!("{} was not among the files", manifest.model))?;
        let shortlist = match &manifest.shortlist {
            Some(name) => Some((
                name.clone(),
                take(name).ok_or_else(|| format!("{name} was not among the files"))?,
            )),
            None => None,
        };
        return Ok(ModelFiles {
            tokenizer,
            model: ModelData::Marian {
                model: (manifest.model, model),
                shortlist,
                max_length_factor: manifest.max_length_factor,
            },
        });
    };
    let generation_config = take("generation_config.json");
    let weights = match take("model.safetensors") {
        Some(bytes) => vec![("model.safetensors".to_string(), bytes)],
        None => {
            let index = take("model.safetensors.index.json").ok_or(
                "neither model.safetensors nor model.safetensors.index.json was among the files",
            )?;
            let mut shards = Vec::new();
            for name in shard_names(&text("model.safetensors.index.json", index)?)
                .map_err(|e| e.to_string())?
            {
                let bytes =
                    take(&name).ok_or_else(|| format!("shard {name} was not among the files"))?;
                shards.push((name, bytes));
            }
            shards
        }
    };
    Ok(ModelFiles {
        tokenizer,
        model: ModelData::HuggingFace {
            config: text("config.json", config)?,
            generation_config: generation_config
                .map(|b| text("generation_config.json", b))
                .transpose()?,
            weights,
        },
    })
}
