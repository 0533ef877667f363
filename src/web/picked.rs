//! The `File` objects a person picked (a model folder's files), as a file source: each read
//! is a slice of its File, with progress.

use std::cell::RefCell;

use super::sources::{LoadedFile, Progress, blob_bytes, reserve};
use crate::error::{Error, Result};
use crate::formats::FileSource;
use crate::formats::source::range_end;

/// The files a person picked (a model folder's files), matched by name.
pub struct PickedFiles {
    files: Vec<web_sys::File>,
    progress: RefCell<Progress>,
    read: RefCell<Vec<LoadedFile>>,
}

impl PickedFiles {
    pub fn new(files: Vec<web_sys::File>, progress: Progress) -> Self {
        PickedFiles {
            files,
            progress: RefCell::new(progress),
            read: RefCell::new(Vec::new()),
        }
    }

    /// Every file read so far, in load order (a folder may hold files a model does not use).
    pub fn read_files(&self) -> Vec<LoadedFile> {
        self.read.borrow().clone()
    }

    fn file(&self, name: &str) -> Option<&web_sys::File> {
        self.files.iter().find(|f| f.name() == name)
    }
}

/// Large files are read in pieces, so progress moves while they load.
const PIECE: u64 = 16 << 20;

impl PickedFiles {
    fn slice_of(&self, name: &str, start: u64, len: u64) -> Result<(&web_sys::File, u64)> {
        let file = self.file(name).ok_or_else(|| Error::MissingFile {
            file: name.to_string(),
            location: self.location(),
        })?;
        Ok((file, range_end(name, start, len, file.size() as u64)?))
    }

    /// Counts a file the first time any of it is read.
    fn first_read(&self, name: &str, size: u64) {
        let mut read = self.read.borrow_mut();
        if !read.iter().any(|(n, _, _)| n == name) {
            read.push((name.to_string(), size, false));
            self.progress.borrow_mut().expect(size as f64);
        }
    }
}

impl FileSource for PickedFiles {
    fn location(&self) -> String {
        "the picked files".into()
    }

    async fn list(&self) -> Result<Option<Vec<String>>> {
        Ok(Some(self.files.iter().map(|f| f.name()).collect()))
    }

    async fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(file) = self.file(name) else {
            return Ok(None);
        };
        let size = file.size() as u64;
        let mut bytes = Vec::new();
        reserve(&mut bytes, name, size)?;
        let mut start = 0;
        while start < size {
            let len = PIECE.min(size - start);
            bytes.extend(self.read_range(name, start, len).await?);
            start += len;
        }
        self.first_read(name, size);
        Ok(Some(bytes))
    }

    async fn read_range(&self, name: &str, start: u64, len: u64) -> Result<Vec<u8>> {
        let (file, end) = self.slice_of(name, start, len)?;
        self.first_read(name, file.size() as u64);
        let bytes = blob_bytes(file, start, end, name).await?;
        self.progress.borrow_mut().advance(name, len as f64);
        Ok(bytes)
    }

    async fn size(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.file(name).map(|f| f.size() as u64))
    }
}
