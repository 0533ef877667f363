//! One input per line, from a file or standard input, read as generation needs them.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use seq2seq_gpu::{Error, Result};

pub struct InputLines {
    reader: Box<dyn BufRead>,
    path: PathBuf,
}

impl InputLines {
    /// `-` is standard input.
    pub fn open(path: &str) -> Result<InputLines> {
        if path == "-" {
            return Ok(InputLines {
                reader: Box::new(BufReader::new(std::io::stdin())),
                path: "standard input".into(),
            });
        }
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        Ok(InputLines {
            reader: Box::new(BufReader::new(file)),
            path: path.into(),
        })
    }
}

impl Iterator for InputLines {
    type Item = Result<String>;

    /// The next line without its line ending (`\n` or `\r\n`).
    fn next(&mut self) -> Option<Result<String>> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => {
                let end = line.trim_end_matches(['\n', '\r']).len();
                line.truncate(end);
                Some(Ok(line))
            }
            Err(source) => Some(Err(Error::Io {
                path: self.path.clone(),
                source,
            })),
        }
    }
}
