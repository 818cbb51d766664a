//! Reading and parsing the config file into the model, with errors that name the file,
//! the line and column, and the key.
//!
//! Parsing only checks the shape (keys, types, address syntax); `validate` checks meaning.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::model::Config;

/// Why a config file could not be turned into a [`Config`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// The text is not TOML, or not the shape of DESIGN §4. `message` starts with the key
    /// path (`load_balancer[0].rule[1].protocol: …`) where one applies, which `key` holds
    /// alone (empty where the error is about the document, or its syntax).
    #[error("{source_name}:{line}:{column}: {message}")]
    Parse {
        source_name: String,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
}

/// The longest config file read: far beyond any real one (a thousand backends take about
/// 100 KiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

impl Config {
    /// Parses config text; `source` names it in errors (usually the file's path).
    pub fn from_toml(text: &str, source: &str) -> Result<Config, ConfigError> {
        // serde_path_to_error records where in the document deserializing failed (the key
        // path); toml's error has the byte span.
        serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|err| parse_error(text, source, &err))
    }

    /// Reads and parses the config file at `path` (at most [`MAX_CONFIG_BYTES`]: a path to
    /// an endless device, `/dev/zero`, is refused, not read until memory runs out).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read = || -> io::Result<String> {
            let mut text = String::new();
            let file = std::fs::File::open(path)?;
            file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
            if text.len() as u64 > MAX_CONFIG_BYTES {
                let what = format!("longer than {} MiB", MAX_CONFIG_BYTES >> 20);
                return Err(io::Error::new(io::ErrorKind::InvalidData, what));
            }
            Ok(text)
        };
        let text = read().map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// [`Config::load`] for a reload, on the control thread, which must not wait: a path
    /// that is not a regular file (a FIFO's open waits for a writer, a device's read for its
    /// data) is refused before it is opened.
    pub fn load_regular(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        if !meta.is_file() {
            let what = "not a regular file (a reload reads only regular files)";
            return Err(read_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                what,
            )));
        }
        Config::load(path)
    }
}

fn parse_error(
    text: &str,
    source: &str,
    err: &serde_path_to_error::Error<toml::de::Error>,
) -> ConfigError {
    let inner = err.inner();
    // toml's message may span lines (syntax errors list what was expected): keep one line.
    let what = inner
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        // serde speaks of fields; the file has keys.
        .replace("unknown field `", "unknown key `")
        .replace("missing field `", "missing key `");
    let (line, column) = inner
        .span()
        .map_or((1, 1), |span| line_column(text, span.start));
    // The path is `.` where the error is about the document itself (or its syntax).
    let key = match err.path().to_string() {
        key if key == "." => String::new(),
        key => key,
    };
    let message = match key.as_str() {
        "" => what,
        key => format!("{key}: {what}"),
    };
    ConfigError::Parse {
        source_name: source.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// 1-based line and column (in characters) of byte offset `pos` in `text`.
fn line_column(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
