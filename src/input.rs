//! File IDs as users paste them: one per line or separated by commas, semicolons, tabs or
//! spaces, or a CSV whose header names a `fileId` column. Every input line is kept, so the
//! report can account for each one.

use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Entry {
    /// A valid ID seen for the first time (normalised to lowercase, hyphenated).
    Valid { id: String },
    /// Not a file ID; never sent anywhere.
    Invalid { reason: String },
    /// A valid ID already listed on `first_line`; downloaded once.
    Duplicate { id: String, first_line: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputLine {
    /// 1-based line of the input (or the position of a command-line argument).
    pub line: usize,
    /// The text as given.
    pub input: String,
    #[serde(flatten)]
    pub entry: Entry,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParsedIds {
    pub lines: Vec<InputLine>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputCounts {
    pub valid: usize,
    pub invalid: usize,
    pub duplicates: usize,
}

impl ParsedIds {
    /// The IDs to download, in input order, each once.
    pub fn unique_ids(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| match &l.entry {
                Entry::Valid { id } => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn counts(&self) -> InputCounts {
        let mut c = InputCounts::default();
        for l in &self.lines {
            match l.entry {
                Entry::Valid { .. } => c.valid += 1,
                Entry::Invalid { .. } => c.invalid += 1,
                Entry::Duplicate { .. } => c.duplicates += 1,
            }
        }
        c
    }
}

/// Normalises a file ID, or says why it is not one.
pub fn normalise_id(token: &str) -> Result<String, String> {
    let t = token.trim().trim_matches('"');
    match uuid::Uuid::try_parse(t) {
        Ok(u) if t.len() == 36 => Ok(u.hyphenated().to_string()),
        _ => Err(format!(
            "not a TDP file ID (expected a UUID such as 3f2b8c1e-5d4a-4e2b-9c1d-7a6b5c4d3e2f): {t:?}"
        )),
    }
}

fn is_separator(c: char) -> bool {
    matches!(c, ',' | ';' | '\t' | ' ' | '\r')
}

fn header_column(first: &str) -> Option<(u8, usize)> {
    for delim in [b',', b';', b'\t'] {
        let idx = first.split(delim as char).position(|f| {
            let f = f.trim().trim_matches('"').to_ascii_lowercase();
            f == "fileid" || f == "file_id" || f == "file id"
        });
        if let Some(i) = idx {
            return Some((delim, i));
        }
    }
    None
}

/// The text of an ID list as people save it: UTF-8 with or without a BOM (Notepad), UTF-16
/// with a BOM (Excel's "Unicode Text"); CRLF or LF. Anything else is refused, naming `source`.
pub fn decode_text(mut bytes: Vec<u8>, source: &str) -> Result<String, String> {
    let utf16 = |bytes: &[u8], unit: fn([u8; 2]) -> u16| -> Result<String, String> {
        if bytes.len() % 2 != 0 {
            return Err(format!(
                "{source} is not complete UTF-16 text (an odd number of bytes)"
            ));
        }
        let units = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]]));
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| format!("{source} is not valid UTF-16 text"))
    };
    match bytes.as_slice() {
        [0xEF, 0xBB, 0xBF, ..] => {
            bytes.drain(..3);
        }
        [0xFF, 0xFE, rest @ ..] => return utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => return utf16(rest, u16::from_be_bytes),
        _ => {}
    }
    String::from_utf8(bytes).map_err(|_| {
        format!(
            "{source} is neither UTF-8 nor UTF-16 text: save it as UTF-8 (Excel: \"CSV UTF-8\"; Notepad: \"UTF-8\")"
        )
    })
}

/// Parses one text (a file, stdin or pasted text).
pub fn parse_ids(text: &str) -> ParsedIds {
    // A BOM that came along with pasted or piped text is not part of the first ID.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Builder::default();
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if let Some((delim, col)) = header_column(first_line) {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delim)
            .has_headers(true)
            .flexible(true)
            .from_reader(text.as_bytes());
        for record in reader.records() {
            match record {
                Ok(rec) => {
                    let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
                    match rec.get(col) {
                        Some(v) if !v.trim().is_empty() => out.push(line, v),
                        Some(_) | None if rec.iter().all(|f| f.trim().is_empty()) => {}
                        _ => out.invalid(
                            line,
                            &rec.iter().collect::<Vec<_>>().join(","),
                            "no fileId in this row",
                        ),
                    }
                }
                Err(e) => {
                    let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                    out.invalid(line, "", &format!("unreadable CSV row: {e}"));
                }
            }
        }
        return out.done();
    }
    for (i, line) in text.lines().enumerate() {
        for token in line.split(is_separator).filter(|t| !t.trim().is_empty()) {
            out.push(i + 1, token);
        }
    }
    out.done()
}

/// Parses IDs given as command-line arguments; each argument's position is its line.
pub fn parse_args(args: &[String], first_line: usize) -> ParsedIds {
    let mut out = Builder::default();
    for (i, arg) in args.iter().enumerate() {
        for token in arg.split(is_separator).filter(|t| !t.trim().is_empty()) {
            out.push(first_line + i, token);
        }
    }
    out.done()
}

impl ParsedIds {
    /// Appends another source, re-checking duplicates across both.
    pub fn merge(self, other: ParsedIds) -> ParsedIds {
        let mut out = Builder::default();
        for l in self.lines.into_iter().chain(other.lines) {
            match l.entry {
                Entry::Invalid { reason } => out.invalid(l.line, &l.input, &reason),
                _ => out.push(l.line, &l.input),
            }
        }
        out.done()
    }
}

#[derive(Default)]
struct Builder {
    lines: Vec<InputLine>,
    seen: HashMap<String, usize>,
}

impl Builder {
    fn push(&mut self, line: usize, token: &str) {
        let input = token.trim().to_string();
        let entry = match normalise_id(&input) {
            Err(reason) => Entry::Invalid { reason },
            Ok(id) => match self.seen.get(&id) {
                Some(&first_line) => Entry::Duplicate { id, first_line },
                None => {
                    self.seen.insert(id.clone(), line);
                    Entry::Valid { id }
                }
            },
        };
        self.lines.push(InputLine { line, input, entry });
    }

    fn invalid(&mut self, line: usize, input: &str, reason: &str) {
        self.lines.push(InputLine {
            line,
            input: input.to_string(),
            entry: Entry::Invalid {
                reason: reason.to_string(),
            },
        });
    }

    fn done(self) -> ParsedIds {
        ParsedIds { lines: self.lines }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3f2b8c1e-5d4a-4e2b-9c1d-7a6b5c4d3e2f";
    const B: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    fn valid(text: &str) -> Vec<String> {
        let p = parse_ids(text);
        assert_eq!(p.counts().invalid, 0, "{:?}", p.lines);
        p.unique_ids()
    }

    #[test]
    fn lists_as_notepad_and_excel_save_them() {
        let want = vec![A.to_string(), B.to_string()];
        // Notepad "UTF-8 with BOM", CRLF.
        let bom = [
            b"\xEF\xBB\xBF".as_slice(),
            format!("{A}\r\n{B}\r\n").as_bytes(),
        ]
        .concat();
        assert_eq!(valid(&decode_text(bom, "ids.txt").unwrap()), want);
        // Notepad "UTF-8" (no BOM).
        let plain = format!("{A}\r\n{B}\r\n").into_bytes();
        assert_eq!(valid(&decode_text(plain, "ids.txt").unwrap()), want);
        // Excel "CSV UTF-8": BOM, a header, quoted cells with commas, CRLF.
        let csv = format!("\u{feff}fileId,name\r\n{A},\"a, b.csv\"\r\n\"{B}\",\"c,d\"\r\n");
        assert_eq!(
            valid(&decode_text(csv.into_bytes(), "x.csv").unwrap()),
            want
        );
        // Excel "Unicode Text": UTF-16LE with a BOM, tab-separated.
        let text = format!("fileId\tname\r\n{A}\tone\r\n{B}\ttwo\r\n");
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(valid(&decode_text(le, "x.txt").unwrap()), want);
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(valid(&decode_text(be, "x.txt").unwrap()), want);
        // Pasted text that kept its BOM.
        assert_eq!(valid(&format!("\u{feff}{A}\n{B}")), want);
    }

    #[test]
    fn other_encodings_are_refused_naming_the_file() {
        let latin1 = b"caf\xe9\n".to_vec();
        let e = decode_text(latin1, "list.txt").unwrap_err();
        assert!(e.starts_with("list.txt is neither UTF-8 nor UTF-16"), "{e}");
        assert!(decode_text(vec![0xFF, 0xFE, 0x41], "odd.txt").is_err());
    }

    #[test]
    fn separators_duplicates_and_invalid_lines() {
        let text = format!("{A}, {B}\n\nnot-an-id;{}\n{A}\t\n", A.to_uppercase());
        let p = parse_ids(&text);
        assert_eq!(p.unique_ids(), vec![A.to_string(), B.to_string()]);
        let c = p.counts();
        assert_eq!((c.valid, c.invalid, c.duplicates), (2, 1, 2));
        let bad = p
            .lines
            .iter()
            .find(|l| matches!(l.entry, Entry::Invalid { .. }))
            .unwrap();
        assert_eq!((bad.line, bad.input.as_str()), (3, "not-an-id"));
        assert!(matches!(
            p.lines[3].entry,
            Entry::Duplicate { first_line: 1, .. }
        ));
    }

    #[test]
    fn csv_with_file_id_column() {
        let text = format!("name,fileId,size\na.csv,{A},3\nb.csv,\"{B}\",4\nc.csv,oops,5\n");
        let p = parse_ids(&text);
        assert_eq!(p.unique_ids(), vec![A.to_string(), B.to_string()]);
        let bad = p
            .lines
            .iter()
            .find(|l| matches!(l.entry, Entry::Invalid { .. }))
            .unwrap();
        assert_eq!(bad.line, 4);
    }

    #[test]
    fn simple_uuid_without_hyphens_is_refused() {
        assert!(normalise_id(&A.replace('-', "")).is_err());
        assert_eq!(normalise_id(&format!(" {} ", A.to_uppercase())).unwrap(), A);
    }
}
