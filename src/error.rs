//! The one error type of the library: every fallible path returns it, so callers (the CLI,
//! the browser layer) can show a one-line message instead of panicking.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no usable GPU adapter: {0}")]
    NoAdapter(String),
    #[error("GPU device request failed: {0}")]
    DeviceRequest(String),
    #[error("GPU error: {0}")]
    Gpu(String),
    #[error("{limit} of this adapter is {allowed}, but {what} needs {needed}")]
    AdapterLimit {
        limit: &'static str,
        allowed: u64,
        what: String,
        needed: u64,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Format { file: String, message: String },
    #[error("{file}: missing tensor \"{name}\"")]
    MissingTensor { file: String, name: String },
    #[error("tensor \"{name}\" has shape {found:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn format(file: impl Into<String>, message: impl ToString) -> Self {
        Error::Format {
            file: file.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}
