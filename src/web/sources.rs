//! The browser's file source for a base URL (through the Cache API, so a second visit does
//! not download again), and what it shares with the picked files' source (`picked`): progress
//! in bytes as data arrives, and reading slices of a Blob.

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::{Function, Object, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, Cache, Response};

use super::js::{await_promise, set};
use crate::error::{Error, Result};
use crate::formats::FileSource;
use crate::formats::source::range_end;

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

    pub(super) fn expect(&mut self, bytes: f64) {
        self.total += bytes;
    }

    pub(super) fn advance(&mut self, file: &str, bytes: f64) {
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

/// A file an engine was loaded from: name, bytes, and whether it came from the cache.
pub type LoadedFile = (String, u64, bool);

/// The global scope's fetch and caches, in a window or a worker.
enum Scope {
    Window(web_sys::Window),
    Worker(web_sys::WorkerGlobalScope),
}

impl Scope {
    fn current() -> Result<Scope> {
        let global = js_sys::global();
        if let Some(window) = global.dyn_ref::<web_sys::Window>() {
            Ok(Scope::Window(window.clone()))
        } else if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
            Ok(Scope::Worker(worker.clone()))
        } else {
            Err(Error::invalid("no window or worker scope to fetch from"))
        }
    }

    fn fetch(&self, url: &str, init: &web_sys::RequestInit) -> js_sys::Promise {
        match self {
            Scope::Window(w) => w.fetch_with_str_and_init(url, init),
            Scope::Worker(w) => w.fetch_with_str_and_init(url, init),
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

/// Room for `total` bytes in `bytes`, or the error of a file too big for this memory.
pub(super) fn reserve(bytes: &mut Vec<u8>, name: &str, total: u64) -> Result<()> {
    usize::try_from(total)
        .ok()
        .and_then(|n| bytes.try_reserve_exact(n.saturating_sub(bytes.len())).ok())
        .ok_or_else(|| Error::invalid(format!("{name}: {total} bytes do not fit in memory")))
}

/// Bytes of `blob[start..end]`.
pub(super) async fn blob_bytes(blob: &Blob, start: u64, end: u64, what: &str) -> Result<Vec<u8>> {
    let piece = blob
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(|e| Error::invalid(format!("reading {what}: {}", super::js::message(&e))))?;
    let buffer = await_promise(piece.array_buffer())
        .await
        .map_err(|e| Error::invalid(format!("reading {what}: {e}")))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// What a request asks of a file.
enum Request {
    Whole,
    /// Bytes `start..end`.
    Bytes {
        start: u64,
        end: u64,
    },
    /// Only whether it exists, and its size.
    Headers,
}

fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).ok().flatten()
}

/// The size of the whole file a response holds or is part of: the total of its
/// `Content-Range`, else its `Content-Length`.
fn file_size(response: &Response) -> Option<u64> {
    match header(response, "content-range") {
        Some(range) => range.rsplit('/').next()?.trim().parse().ok(),
        None => header(response, "content-length")?.trim().parse().ok(),
    }
}

/// A model folder under a base URL.
pub struct UrlSource {
    base: String,
    scope: Scope,
    cache: Option<Cache>,
    progress: RefCell<Progress>,
    fetched: RefCell<Vec<LoadedFile>>,
    /// Files read by range, where their bytes come from.
    opened: RefCell<HashMap<String, Opened>>,
}

impl UrlSource {
    pub async fn new(base_url: &str, use_cache: bool, progress: Progress) -> Result<UrlSource> {
        let scope = Scope::current()?;
        let cache = if use_cache { scope.cache().await } else { None };
        let mut base = base_url.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        Ok(UrlSource {
            base,
            scope,
            cache,
            progress: RefCell::new(progress),
            fetched: RefCell::new(Vec::new()),
            opened: RefCell::default(),
        })
    }

    /// Every file read so far, in load order.
    pub fn fetched(&self) -> Vec<LoadedFile> {
        self.fetched.borrow().clone()
    }

    fn url(&self, name: &str) -> String {
        format!("{}{name}", self.base)
    }

    async fn cached(&self, url: &str) -> Option<Response> {
        let cache = self.cache.as_ref()?;
        await_promise(cache.match_with_str(url))
            .await
            .ok()?
            .dyn_into::<Response>()
            .ok()
    }

    /// The server's answer, whatever its status; `signal` can abort the body's download.
    async fn fetch(
        &self,
        url: &str,
        request: Request,
        signal: Option<&web_sys::AbortSignal>,
    ) -> Result<Response> {
        let fetch_error = |message: String| Error::Fetch {
            url: url.to_string(),
            status: None,
            message,
        };
        let init = web_sys::RequestInit::new();
        init.set_signal(signal);
        match request {
            Request::Whole => {}
            Request::Headers => init.set_method("HEAD"),
            Request::Bytes { start, end } => {
                let headers =
                    web_sys::Headers::new().map_err(|e| fetch_error(super::js::message(&e)))?;
                headers
                    .set("range", &format!("bytes={start}-{}", end - 1))
                    .map_err(|e| fetch_error(super::js::message(&e)))?;
                init.set_headers(&headers);
            }
        }
        await_promise(self.scope.fetch(url, &init))
            .await
            .map_err(fetch_error)?
            .dyn_into()
            .map_err(|_| fetch_error("fetch did not return a Response".into()))
    }

    fn status_error(url: &str, response: &Response) -> Error {
        Error::Fetch {
            url: url.to_string(),
            status: Some(response.status()),
            message: response.status_text(),
        }
    }

    fn missing(&self, name: &str) -> Error {
        Error::MissingFile {
            file: name.to_string(),
            location: self.base.clone(),
        }
    }

    /// The body of a response as a Blob, whose slices are read without copying the rest.
    async fn blob(url: &str, response: &Response) -> Result<Blob> {
        let read_error = |message: String| Error::Fetch {
            url: url.to_string(),
            status: None,
            message,
        };
        let promise = response
            .blob()
            .map_err(|e| read_error(super::js::message(&e)))?;
        Ok(await_promise(promise)
            .await
            .map_err(read_error)?
            .unchecked_into())
    }

    /// Passes each chunk of a response's body to `sink` as it arrives, with progress.
    async fn stream_body(
        &self,
        name: &str,
        response: &Response,
        mut sink: impl FnMut(&Uint8Array) -> Result<()>,
    ) -> Result<()> {
        let length = header(response, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
        self.progress
            .borrow_mut()
            .expect(length.unwrap_or(0) as f64);
        let Some(body) = response.body() else {
            return Ok(());
        };
        let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        loop {
            let chunk = await_promise(reader.read())
                .await
                .map_err(|e| Error::Fetch {
                    url: self.url(name),
                    status: None,
                    message: e,
                })?;
            let done = js_sys::Reflect::get(&chunk, &"done".into())
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            if done {
                return Ok(());
            }
            if let Ok(value) = js_sys::Reflect::get(&chunk, &"value".into()) {
                let array = Uint8Array::new(&value);
                sink(&array)?;
                let mut progress = self.progress.borrow_mut();
                if length.is_none() {
                    progress.expect(array.length() as f64);
                }
                progress.advance(name, array.length() as f64);
            }
        }
    }

    async fn read_body(&self, name: &str, response: &Response) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        if let Some(length) = file_size(response) {
            reserve(&mut bytes, name, length)?;
        }
        self.stream_body(name, response, |array| {
            let start = bytes.len();
            // Without a length the body grows chunk by chunk: a failed allocation is an
            // error, not a trap.
            if bytes.try_reserve(array.length() as usize).is_err() {
                reserve(&mut bytes, name, (start + array.length() as usize) as u64)?;
            }
            bytes.resize(start + array.length() as usize, 0);
            array.copy_to(&mut bytes[start..]);
            Ok(())
        })
        .await?;
        Ok(bytes)
    }

    /// Downloads `name` into the cache, its body streaming to disk through the browser (only
    /// progress is counted here, so no copy reaches wasm memory). A body that fails midway
    /// fails the put too, and the cache keeps no entry. Whether the cache now holds it;
    /// `None` when the server has no such file.
    async fn store(&self, name: &str) -> Result<Option<bool>> {
        let Some(cache) = &self.cache else {
            return Ok(Some(false));
        };
        let url = self.url(name);
        let Some((response, download)) = self.download(&url).await? else {
            return Ok(None);
        };
        let Ok(copy) = response.clone() else {
            return Ok(Some(false));
        };
        // Made at once, so that its rejection is always handled.
        let stored = JsFuture::from(cache.put_with_str(&url, &copy));
        let counted = self.stream_body(name, &response, |_| Ok(())).await;
        if counted.is_err()
            && let Some(download) = &download
        {
            download.abort();
        }
        // Storing is best effort (a full quota must not fail the load): without the entry,
        // the file is read by range requests instead.
        let stored = stored.await.is_ok();
        counted?;
        Ok(Some(stored))
    }

    /// Where the ranges of `name` are read (`None` when there is no such file). Found once
    /// per file, which is then listed as loaded; asking a file's size opens it too, since a
    /// file is sized to be read.
    async fn open(&self, name: &str) -> Result<Option<Opened>> {
        if let Some(found) = self.opened.borrow().get(name) {
            return Ok(Some(found.clone()));
        }
        let url = self.url(name);
        // Reading a file this load downloaded is not counted again.
        let (body, from_cache, counts) = match self.cached(&url).await {
            Some(response) => (Body::Cached(Self::blob(&url, &response).await?), true, true),
            None => match self.store(name).await? {
                None => return Ok(None),
                Some(true) => match self.cached(&url).await {
                    Some(response) => (
                        Body::Cached(Self::blob(&url, &response).await?),
                        false,
                        false,
                    ),
                    None => (Body::Server, false, true),
                },
                Some(false) => (Body::Server, false, true),
            },
        };
        let size = match &body {
            Body::Cached(blob) => blob.size() as u64,
            Body::Server => match self.server_size(name).await? {
                Some(size) => size,
                None => return Ok(None),
            },
        };
        if counts {
            self.progress.borrow_mut().expect(size as f64);
        }
        self.fetched
            .borrow_mut()
            .push((name.to_string(), size, from_cache));
        let opened = Opened { body, counts, size };
        self.opened
            .borrow_mut()
            .insert(name.to_string(), opened.clone());
        Ok(Some(opened))
    }

    /// A whole file's response, with the controller that aborts its body's download;
    /// `None` when the server has no such file.
    async fn download(
        &self,
        url: &str,
    ) -> Result<Option<(Response, Option<web_sys::AbortController>)>> {
        let download = web_sys::AbortController::new().ok();
        let signal = download.as_ref().map(|d| d.signal());
        let response = self.fetch(url, Request::Whole, signal.as_ref()).await?;
        match response.status() {
            404 => Ok(None),
            _ if response.ok() => Ok(Some((response, download))),
            _ => Err(Self::status_error(url, &response)),
        }
    }

    /// `len` bytes from `start` by a range request.
    async fn fetch_range(&self, name: &str, start: u64, len: u64) -> Result<Vec<u8>> {
        let url = self.url(name);
        let end = match start.checked_add(len) {
            Some(end) if len > 0 => end,
            // HTTP cannot ask for no bytes, nor for bytes past any file: the headers tell
            // whether the file exists and how long it is.
            _ => {
                let size = self
                    .server_size(name)
                    .await?
                    .ok_or_else(|| self.missing(name))?;
                range_end(name, start, len, size)?;
                return Ok(Vec::new());
            }
        };
        let response = self
            .fetch(&url, Request::Bytes { start, end }, None)
            .await?;
        match response.status() {
            404 => Err(self.missing(name)),
            // The range starts past the end of the file.
            416 => Err(
                range_end(name, start, len, file_size(&response).unwrap_or(start))
                    .err()
                    .unwrap_or_else(|| Self::status_error(&url, &response)),
            ),
            206 => {
                let blob = Self::blob(&url, &response).await?;
                let sent = blob.size() as u64;
                range_end(name, start, len, start + sent)?;
                blob_bytes(&blob, 0, len, name).await
            }
            // A server that ignores ranges sends the whole file: it is kept, and every later
            // range of the file is sliced from it instead of downloading it again.
            200 => {
                let blob = Self::blob(&url, &response).await?;
                if let Some(opened) = self.opened.borrow_mut().get_mut(name) {
                    opened.body = Body::Cached(blob.clone());
                }
                let end = range_end(name, start, len, blob.size() as u64)?;
                blob_bytes(&blob, start, end, name).await
            }
            _ => Err(Self::status_error(&url, &response)),
        }
    }

    /// The size the server gives for `name` (a HEAD request); `None` when it has no such file.
    async fn server_size(&self, name: &str) -> Result<Option<u64>> {
        let url = self.url(name);
        let response = self.fetch(&url, Request::Headers, None).await?;
        match response.status() {
            404 => Ok(None),
            _ if response.ok() => Ok(Some(file_size(&response).unwrap_or(0))),
            _ => Err(Self::status_error(&url, &response)),
        }
    }
}

/// A file read by range: where its bytes come from, its size, and whether reading it counts
/// as progress.
#[derive(Clone)]
struct Opened {
    body: Body,
    counts: bool,
    size: u64,
}

/// Where a file's byte ranges come from.
#[derive(Clone)]
enum Body {
    /// The cached response's body (the browser keeps it on disk and reads only the slices),
    /// or the whole file a server sent when asked for a range.
    Cached(Blob),
    /// Range requests to the server (no cache, or the cache refused the file).
    Server,
}

impl FileSource for UrlSource {
    fn location(&self) -> String {
        self.base.clone()
    }

    /// A URL base cannot be listed: each file is asked for.
    async fn list(&self) -> Result<Option<Vec<String>>> {
        Ok(None)
    }

    async fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let url = self.url(name);
        if let Some(response) = self.cached(&url).await {
            let bytes = self.read_body(name, &response).await?;
            self.fetched
                .borrow_mut()
                .push((name.to_string(), bytes.len() as u64, true));
            return Ok(Some(bytes));
        }
        let Some((response, download)) = self.download(&url).await? else {
            return Ok(None);
        };
        // The cache stores its half of the clone while the body is read here, so neither
        // half waits whole in memory for the other; a body that fails midway fails the put
        // too, and the cache keeps no entry. The put's future is made at once so that its
        // rejection is always handled.
        let stored = match &self.cache {
            Some(cache) => response
                .clone()
                .ok()
                .map(|copy| JsFuture::from(cache.put_with_str(&url, &copy))),
            None => None,
        };
        let bytes = self.read_body(name, &response).await;
        if bytes.is_err()
            && let Some(download) = &download
        {
            // Reading stopped here (no memory, a broken body): stop the cache's download as
            // well, so that it neither finishes the file nor keeps it.
            download.abort();
        }
        if let Some(stored) = stored {
            // Storing is best effort: a full quota must not fail the load.
            let _ = stored.await;
        }
        let bytes = bytes?;
        self.fetched
            .borrow_mut()
            .push((name.to_string(), bytes.len() as u64, false));
        Ok(Some(bytes))
    }

    /// Weights are read by range: from the cache, where the whole file is first stored as
    /// it downloads, else from the server.
    async fn read_range(&self, name: &str, start: u64, len: u64) -> Result<Vec<u8>> {
        let opened = self.open(name).await?.ok_or_else(|| self.missing(name))?;
        let bytes = match &opened.body {
            Body::Cached(blob) => {
                let end = range_end(name, start, len, blob.size() as u64)?;
                blob_bytes(blob, start, end, name).await?
            }
            Body::Server => self.fetch_range(name, start, len).await?,
        };
        if opened.counts {
            self.progress.borrow_mut().advance(name, len as f64);
        }
        Ok(bytes)
    }

    async fn size(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.open(name).await?.map(|opened| opened.size))
    }
}
