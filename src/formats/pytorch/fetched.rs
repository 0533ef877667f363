//! A zip archive's directory read over byte ranges: the zip library reads through a
//! `Read + Seek` view of the pieces of the file fetched so far; when it asks for bytes that
//! are not there, they are fetched and it starts again. A torch archive's directory sits in
//! its last bytes, so the first piece (the tail) is usually all it needs, and a file of
//! gigabytes is opened with a few kilobytes read.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;

use crate::error::{Error, Result};
use crate::formats::source::FileSource;

/// The zip end record with the longest comment, and zip64's locator and record before it.
const TAIL: u64 = 22 + 65_535 + 20 + 56;
/// Bounds the fetch-and-retry loop, and each fetch, on a hostile archive (a real directory
/// of even 65,535 entries is a few megabytes).
const MAX_FETCHES: usize = 8;
const MAX_PIECE: u64 = 16 << 20;

pub(super) struct Fetched {
    size: u64,
    position: u64,
    pieces: Vec<(u64, Vec<u8>)>,
    /// The first bytes asked for that were not fetched.
    missing: Option<Range<u64>>,
}

impl Fetched {
    pub fn new(size: u64) -> Self {
        Fetched {
            size,
            position: 0,
            pieces: Vec::new(),
            missing: None,
        }
    }

    async fn fetch(
        &mut self,
        source: &impl FileSource,
        file: &str,
        range: Range<u64>,
    ) -> Result<()> {
        let bytes = source
            .read_range(file, range.start, range.end - range.start)
            .await?;
        self.pieces.push((range.start, bytes));
        Ok(())
    }

    /// Fetches the tail, then whatever else the zip library reads to list the entries.
    pub async fn directory(&mut self, source: &impl FileSource, file: &str) -> Result<()> {
        let tail = self.size.saturating_sub(TAIL);
        self.fetch(source, file, tail..self.size).await?;
        for _ in 0..MAX_FETCHES {
            self.position = 0;
            let parsed = zip::ZipArchive::new(&mut *self).map(|_| ());
            match (parsed, self.missing.take()) {
                (_, Some(missing)) => {
                    // Fill the gap up to the bytes already fetched, within reason.
                    let gap_end = self
                        .covered_from(missing.start)
                        .min(missing.start + MAX_PIECE);
                    let end = gap_end.max(missing.end).min(self.size);
                    self.fetch(source, file, missing.start..end).await?;
                }
                (result, None) => {
                    return result.map_err(|e| {
                        Error::format(file, format!("not a PyTorch zip archive: {e}"))
                    });
                }
            }
        }
        Err(Error::format(
            file,
            "not a PyTorch zip archive: its directory is not where its end record says",
        ))
    }

    /// Where the fetched bytes after `start` begin, so that one fetch fills the gap to them.
    fn covered_from(&self, start: u64) -> u64 {
        self.pieces
            .iter()
            .map(|(at, _)| *at)
            .filter(|&at| at > start)
            .min()
            .unwrap_or(self.size)
    }
}

impl Read for Fetched {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.position >= self.size {
            return Ok(0);
        }
        let here = self
            .pieces
            .iter()
            .find(|(at, bytes)| *at <= self.position && self.position < at + bytes.len() as u64);
        match here {
            Some((at, bytes)) => {
                let from = (self.position - at) as usize;
                let n = buf.len().min(bytes.len() - from);
                buf[..n].copy_from_slice(&bytes[from..from + n]);
                self.position += n as u64;
                Ok(n)
            }
            None => {
                let end = self
                    .position
                    .saturating_add(buf.len() as u64)
                    .min(self.size);
                self.missing.get_or_insert(self.position..end);
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "not fetched yet",
                ))
            }
        }
    }
}

impl Seek for Fetched {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let position = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = position
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}
