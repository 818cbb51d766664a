//! Where in the file a parse error is: line and column of a byte offset, and the key path
//! (`load_balancer[0].rule[1].protocol`) of the table, key or value found there.
//!
//! `toml`'s errors carry a byte span and a message but not the key path (it keeps it
//! private), so we recover the path by re-reading the text up to the span: a small scanner
//! that knows table headers, arrays of tables, dotted keys, strings, arrays and inline
//! tables. It is a best effort for messages only; on text it does not understand it stops
//! and reports the path it has so far.

use std::collections::HashMap;
use std::fmt::Write as _;

/// 1-based line and column (in characters) of byte offset `pos` in `text`.
pub(crate) fn line_column(text: &str, pos: usize) -> (usize, usize) {
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

/// The key path at byte offset `pos` of the TOML document `text`, or `None` when `pos` is
/// outside every table and key (the document itself).
pub(crate) fn key_path_at(text: &str, pos: usize) -> Option<String> {
    let mut scanner = Scanner {
        text: text.as_bytes(),
        i: 0,
        pos,
    };
    let path = scanner.document();
    if path.is_empty() {
        None
    } else {
        Some(format_path(&path))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(String),
    Index(usize),
}

fn format_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                if !key.is_empty() && key.bytes().all(is_bare_key_byte) {
                    out.push_str(key);
                } else {
                    let _ = write!(out, "{key:?}");
                }
            }
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

fn is_bare_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Walks the document; each step returns `Some(path)` as soon as it has consumed the byte
/// at `pos`, so the path in force there is the answer.
struct Scanner<'a> {
    text: &'a [u8],
    i: usize,
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.i).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.text.get(self.i + ahead).copied()
    }

    fn passed(&self) -> bool {
        self.i > self.pos
    }

    /// Skips spaces and tabs, and with `newlines` also line ends and comments.
    fn skip_blank(&mut self, newlines: bool) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' => self.i += 1,
                b'\r' | b'\n' if newlines => self.i += 1,
                b'#' if newlines => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn document(&mut self) -> Vec<Segment> {
        let mut table: Vec<Segment> = Vec::new();
        // Elements seen so far of each array of tables, by its resolved path.
        let mut arrays: HashMap<Vec<Segment>, usize> = HashMap::new();
        loop {
            self.skip_blank(true);
            if self.passed() || self.peek().is_none() {
                return table;
            }
            if self.peek() == Some(b'[') {
                let array = self.peek_at(1) == Some(b'[');
                self.i += if array { 2 } else { 1 };
                self.skip_blank(false);
                let Some(keys) = self.dotted_key() else {
                    return table;
                };
                self.skip_blank(false);
                let closing = if array { 2 } else { 1 };
                if self.text[self.i..].iter().take(closing).all(|&b| b == b']') {
                    self.i += closing;
                }
                table = resolve_header(&keys, array, &mut arrays);
                if self.passed() {
                    return table;
                }
            } else {
                let Some(keys) = self.dotted_key() else {
                    return table;
                };
                let mut path = table.clone();
                path.extend(keys.into_iter().map(Segment::Key));
                if self.passed() {
                    return path;
                }
                if let Some(found) = self.assignment(&path) {
                    return found;
                }
                // Anything but a comment or line end after a value is malformed, and so
                // most likely where the error is.
                self.skip_blank(false);
                if self.passed() || !matches!(self.peek(), None | Some(b'\n' | b'\r' | b'#')) {
                    return path;
                }
            }
        }
    }

    /// After a key: `= value`.
    fn assignment(&mut self, path: &[Segment]) -> Option<Vec<Segment>> {
        self.skip_blank(false);
        if self.peek() != Some(b'=') {
            return Some(path.to_vec());
        }
        self.i += 1;
        self.skip_blank(false);
        self.value(path)
    }

    fn value(&mut self, path: &[Segment]) -> Option<Vec<Segment>> {
        match self.peek() {
            Some(b'[') => self.array(path),
            Some(b'{') => self.inline_table(path),
            Some(b'"' | b'\'') => {
                self.string();
                self.passed().then(|| path.to_vec())
            }
            Some(_) => {
                let start = self.i;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b']' | b'}' | b'#' | b'\n' | b'\r' | b' ' | b'\t')
                ) {
                    self.i += 1;
                }
                (self.passed() || self.i == start).then(|| path.to_vec())
            }
            None => Some(path.to_vec()),
        }
    }

    fn array(&mut self, path: &[Segment]) -> Option<Vec<Segment>> {
        self.i += 1;
        let mut index = 0;
        loop {
            self.skip_blank(true);
            if self.passed() {
                return Some(path.to_vec());
            }
            match self.peek() {
                Some(b']') => {
                    self.i += 1;
                    return self.passed().then(|| path.to_vec());
                }
                Some(b',') => {
                    self.i += 1;
                    index += 1;
                }
                None => return Some(path.to_vec()),
                Some(_) => {
                    let mut element = path.to_vec();
                    element.push(Segment::Index(index));
                    if let Some(found) = self.value(&element) {
                        return Some(found);
                    }
                }
            }
        }
    }

    fn inline_table(&mut self, path: &[Segment]) -> Option<Vec<Segment>> {
        self.i += 1;
        loop {
            self.skip_blank(true);
            if self.passed() {
                return Some(path.to_vec());
            }
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    return self.passed().then(|| path.to_vec());
                }
                Some(b',') => self.i += 1,
                None => return Some(path.to_vec()),
                Some(_) => {
                    let Some(keys) = self.dotted_key() else {
                        return Some(path.to_vec());
                    };
                    let mut member = path.to_vec();
                    member.extend(keys.into_iter().map(Segment::Key));
                    if self.passed() {
                        return Some(member);
                    }
                    if let Some(found) = self.assignment(&member) {
                        return Some(found);
                    }
                }
            }
        }
    }

    /// `a`, `a.b`, `"quoted key".c`; `None` when there is no key here.
    fn dotted_key(&mut self) -> Option<Vec<String>> {
        let mut keys = Vec::new();
        loop {
            keys.push(self.simple_key()?);
            self.skip_blank(false);
            if self.peek() != Some(b'.') {
                return Some(keys);
            }
            self.i += 1;
            self.skip_blank(false);
        }
    }

    fn simple_key(&mut self) -> Option<String> {
        match self.peek() {
            Some(b'"' | b'\'') => {
                let start = self.i;
                self.string();
                let raw = String::from_utf8_lossy(&self.text[start..self.i]);
                Some(raw.trim_matches(|c| c == '"' || c == '\'').to_owned())
            }
            Some(b) if is_bare_key_byte(b) => {
                let start = self.i;
                while self.peek().is_some_and(is_bare_key_byte) {
                    self.i += 1;
                }
                Some(String::from_utf8_lossy(&self.text[start..self.i]).into_owned())
            }
            _ => None,
        }
    }

    /// Skips a basic, literal or multi-line string starting at its quote.
    fn string(&mut self) {
        let Some(quote) = self.peek() else { return };
        let escapes = quote == b'"';
        let multi = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        if !multi && self.peek_at(1) == Some(quote) {
            self.i += 2; // empty string
            return;
        }
        self.i += if multi { 3 } else { 1 };
        while let Some(b) = self.peek() {
            if escapes && b == b'\\' {
                self.i += 2;
                continue;
            }
            if b == quote {
                if !multi {
                    self.i += 1;
                    return;
                }
                if self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote) {
                    self.i += 3;
                    // Up to two more quotes belong to the content (`""""` ends in one).
                    for _ in 0..2 {
                        if self.peek() == Some(quote) {
                            self.i += 1;
                        }
                    }
                    return;
                }
            } else if b == b'\n' && !multi {
                return; // unterminated: stop at the line end
            }
            self.i += 1;
        }
        self.i = self.i.min(self.text.len());
    }
}

/// The resolved path of a `[a.b]` or `[[a.b]]` header: each part that names an array of
/// tables refers to its latest element; `[[…]]` appends a new element.
fn resolve_header(
    keys: &[String],
    array: bool,
    arrays: &mut HashMap<Vec<Segment>, usize>,
) -> Vec<Segment> {
    let mut path = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        path.push(Segment::Key(key.clone()));
        let last = n + 1 == keys.len();
        if last && array {
            let count = arrays.entry(path.clone()).or_insert(0);
            *count += 1;
            path.push(Segment::Index(*count - 1));
        } else if let Some(&count) = arrays.get(&path) {
            path.push(Segment::Index(count - 1));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> Option<String> {
        let pos = text.find(needle).expect("needle in text");
        key_path_at(text, pos)
    }

    const DOC: &str = r#"
top = 1   # comment with [brackets] and "quotes"
[dataplane]
workers = "x"

[[interface]]
name = "a"
[[interface]]
name = "b"
routes = [{ to = "10.9.0.0/16", via = "10.0.0.1" }, { to = "x", zz = 1 }]

[[load_balancer]]
name = "one"
  [[load_balancer.rule]]
  name = "r0"
[[load_balancer]]
name = "two"
  [[load_balancer.rule]]
  name = "r0"
  [[load_balancer.rule]]
  name = 'literal'
  protocol = "bogus"
  [[load_balancer.backend_pool]]
  name = """multi
line"""
  backends = [
    { address = "10.0.0.11" },   # first
    { address = "10.0.0.12", weight = 2,
      "odd key" = 3 },
  ]
  inline.dotted = 4
"#;

    #[test]
    fn finds_keys_in_tables_and_arrays_of_tables() {
        assert_eq!(at(DOC, "top").as_deref(), Some("top"));
        assert_eq!(at(DOC, "\"x\"").as_deref(), Some("dataplane.workers"));
        assert_eq!(at(DOC, "[[interface]]").as_deref(), Some("interface[0]"));
        assert_eq!(at(DOC, "zz").as_deref(), Some("interface[1].routes[1].zz"));
        assert_eq!(
            at(DOC, "\"x\", zz").as_deref(),
            Some("interface[1].routes[1].to")
        );
        assert_eq!(
            at(DOC, "bogus").as_deref(),
            Some("load_balancer[1].rule[1].protocol")
        );
        assert_eq!(
            at(DOC, "weight").as_deref(),
            Some("load_balancer[1].backend_pool[0].backends[1].weight")
        );
        assert_eq!(
            at(DOC, "\"odd key\"").as_deref(),
            Some("load_balancer[1].backend_pool[0].backends[1].\"odd key\"")
        );
        assert_eq!(
            at(DOC, "{ address = \"10.0.0.11\"").as_deref(),
            Some("load_balancer[1].backend_pool[0].backends[0]")
        );
        assert_eq!(
            at(DOC, "dotted").as_deref(),
            Some("load_balancer[1].backend_pool[0].inline.dotted")
        );
        assert_eq!(
            at(DOC, "4\n").as_deref(),
            Some("load_balancer[1].backend_pool[0].inline.dotted")
        );
    }

    #[test]
    fn comments_and_blank_lines_are_the_enclosing_table() {
        assert_eq!(
            at(DOC, "# first").as_deref(),
            Some("load_balancer[1].backend_pool[0].backends")
        );
        assert_eq!(key_path_at(DOC, 0), None);
    }

    #[test]
    fn never_panics_on_malformed_text() {
        for text in [
            "[",
            "[[a",
            "a = \"unterminated\n",
            "a = [1, {b = ",
            "= 3",
            "a.=",
            "'''",
        ] {
            for pos in 0..=text.len() + 1 {
                let _ = key_path_at(text, pos);
            }
        }
    }

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        let pos = text.find('=').unwrap();
        assert_eq!(line_column(text, pos), (1, 3));
        let pos = text.find('"').unwrap();
        assert_eq!(line_column(text, pos), (2, 6));
        assert_eq!(line_column(text, 10_000), (3, 1));
    }
}
