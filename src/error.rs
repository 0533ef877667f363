//! The one error type of the library: every fallible path returns it, so callers (the CLI,
//! the browser layer) can show a one-line message instead of panicking. Variants are split
//! where a caller may branch on them (a missing file, a fetch status, a shape).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no usable GPU adapter: {0}")]
    NoAdapter(String),
    #[error("GPU device request failed: {0}")]
    DeviceRequest(String),
    #[error("GPU error: {0}")]
    Gpu(String),
    #[error("{limit} of this device is {allowed}, but {what} needs {needed}")]
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
    /// A file a model folder must hold is not in `location` (a folder, a URL base, the
    /// files a person picked); `file` names it, or the files any one of which would do.
    #[error("{location}: no {file}")]
    MissingFile { file: String, location: String },
    /// An HTTP request failed: `status` is the HTTP status when the server answered.
    #[error("{url}: {}", match status { Some(code) => format!("HTTP {code} {message}"), None => format!("could not fetch: {message}") })]
    Fetch {
        url: String,
        status: Option<u16>,
        message: String,
    },
    #[error("{file}: {message}")]
    Format { file: String, message: String },
    #[error("{file}: missing tensor \"{name}\"")]
    MissingTensor { file: String, name: String },
    #[error("{file}: tensor \"{name}\" has shape {found:?}, expected {expected:?}")]
    TensorShape {
        file: String,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// An op was given operands that do not fit each other.
    #[error("{op}: expected {expected}, found {found}")]
    Shape {
        op: &'static str,
        expected: String,
        found: String,
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

    pub(crate) fn shape(
        op: &'static str,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Error::Shape {
            op,
            expected: expected.into(),
            found: found.into(),
        }
    }
}
