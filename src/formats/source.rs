//! Where a model's files come from. The engine loads from any [`FileSource`]: a folder
//! (native), bytes in memory (the bundled model, tests), and in the browser a URL base
//! through the Cache API or the `File` objects a person picked (`web::sources`).

use std::borrow::Cow;
use std::future::Future;

use crate::error::{Error, Result};

/// Files by name, read asynchronously (the browser cannot block on a download).
pub trait FileSource {
    /// Where the files are, for messages: a folder's path, a URL base.
    fn location(&self) -> String;

    /// The names of the files, where the source can tell without a request per file; `None`
    /// where it cannot list (a URL base), and callers ask for each file instead.
    fn list(&self) -> impl Future<Output = Result<Option<Vec<String>>>>;

    /// A whole file; `None` when the source holds no file of that name.
    fn read(&self, name: &str) -> impl Future<Output = Result<Option<Vec<u8>>>>;

    /// `len` bytes of a file from byte `start`; an error when the file is missing or ends
    /// before `start + len`.
    fn read_range(&self, name: &str, start: u64, len: u64)
    -> impl Future<Output = Result<Vec<u8>>>;

    /// A file's size in bytes; `None` when the source holds no file of that name. Lets a
    /// checkpoint be read tensor by tensor without holding the whole file.
    fn size(&self, name: &str) -> impl Future<Output = Result<Option<u64>>>;
}

/// A borrowed source reads like the source itself (an engine loads from a caller's source
/// without taking it).
impl<S: FileSource> FileSource for &S {
    fn location(&self) -> String {
        (**self).location()
    }

    fn list(&self) -> impl Future<Output = Result<Option<Vec<String>>>> {
        (**self).list()
    }

    fn read(&self, name: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> {
        (**self).read(name)
    }

    fn read_range(
        &self,
        name: &str,
        start: u64,
        len: u64,
    ) -> impl Future<Output = Result<Vec<u8>>> {
        (**self).read_range(name, start, len)
    }

    fn size(&self, name: &str) -> impl Future<Output = Result<Option<u64>>> {
        (**self).size(name)
    }
}

/// The value of a future that is already complete, as every read of a [`MemorySource`] is:
/// lets in-memory checkpoints (tests, fuzzing) be opened without an executor.
pub(crate) fn completed<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => {
            Err(Error::invalid("an in-memory read did not complete at once"))
        }
    }
}

/// `name` as named inside `file` (an index, a config), if it is a plain file name: never a
/// path that could leave the model folder.
pub(crate) fn plain_file_name(file: &str, name: &str) -> Result<String> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Err(Error::format(
            file,
            format!("\"{name}\" is not a plain file name in the model folder"),
        ));
    }
    Ok(name.to_string())
}

/// The end of `len` bytes from `start` in a file of `size` bytes, or the error of a range
/// past its end: the same check and message for every source.
pub(crate) fn range_end(file: &str, start: u64, len: u64, size: u64) -> Result<u64> {
    match start.checked_add(len) {
        Some(end) if end <= size => Ok(end),
        _ => Err(Error::format(
            file,
            format!("{len} bytes from byte {start} reach past the end of the file ({size} bytes)"),
        )),
    }
}

/// `bytes[start..start + len]`, or the error of a range past the end.
pub(crate) fn slice_range(name: &str, bytes: &[u8], start: u64, len: u64) -> Result<Vec<u8>> {
    let end = range_end(name, start, len, bytes.len() as u64)?;
    Ok(bytes[start as usize..end as usize].to_vec())
}

/// Files held in memory: the model compiled into the CLI, and models tests build.
pub struct MemorySource {
    location: String,
    files: Vec<(String, Cow<'static, [u8]>)>,
}

impl MemorySource {
    pub fn new(location: impl Into<String>) -> Self {
        MemorySource {
            location: location.into(),
            files: Vec::new(),
        }
    }

    /// Adds (or replaces) a file.
    pub fn with(mut self, name: impl Into<String>, bytes: impl Into<Cow<'static, [u8]>>) -> Self {
        let name = name.into();
        self.files.retain(|(n, _)| *n != name);
        self.files.push((name, bytes.into()));
        self
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bytes)| bytes.as_ref())
    }
}

impl FileSource for MemorySource {
    fn location(&self) -> String {
        self.location.clone()
    }

    async fn list(&self) -> Result<Option<Vec<String>>> {
        Ok(Some(self.files.iter().map(|(n, _)| n.clone()).collect()))
    }

    async fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get(name).map(<[u8]>::to_vec))
    }

    async fn read_range(&self, name: &str, start: u64, len: u64) -> Result<Vec<u8>> {
        let bytes = self.get(name).ok_or_else(|| Error::MissingFile {
            file: name.to_string(),
            location: self.location.clone(),
        })?;
        slice_range(name, bytes, start, len)
    }

    async fn size(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.get(name).map(|bytes| bytes.len() as u64))
    }
}

/// A model folder on disk.
#[cfg(not(target_arch = "wasm32"))]
pub struct DirSource {
    dir: std::path::PathBuf,
}

#[cfg(not(target_arch = "wasm32"))]
impl DirSource {
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Result<DirSource> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(Error::Io {
                path: dir,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such model folder"),
            });
        }
        Ok(DirSource { dir })
    }

    fn io_error(&self, name: &str, source: std::io::Error) -> Error {
        Error::Io {
            path: self.dir.join(name),
            source,
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl FileSource for DirSource {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    async fn list(&self) -> Result<Option<Vec<String>>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| self.io_error("", e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io_error("", e))?;
            if entry.file_type().is_ok_and(|t| !t.is_dir()) {
                names.extend(entry.file_name().to_str().map(str::to_string));
            }
        }
        names.sort();
        Ok(Some(names))
    }

    async fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(name, e)),
        }
    }

    async fn read_range(&self, name: &str, start: u64, len: u64) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(self.dir.join(name)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::MissingFile {
                    file: name.to_string(),
                    location: self.location(),
                }
            } else {
                self.io_error(name, e)
            }
        })?;
        let size = file.metadata().map_err(|e| self.io_error(name, e))?.len();
        range_end(name, start, len, size)?;
        let mut bytes = vec![0; len as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| self.io_error(name, e))?;
        Ok(bytes)
    }

    async fn size(&self, name: &str) -> Result<Option<u64>> {
        match std::fs::metadata(self.dir.join(name)) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(name, e)),
        }
    }
}
