//! File IDs as users paste them: one per line or separated by commas, semicolons, tabs or
//! spaces, or a CSV whose header names a `fileId` column. Every input line is accounted for
//! in the report, produced again from the input when the report is written.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

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

/// A parsed input: the unique valid IDs, the counts, the first invalid lines, and its sources,
/// from which every line is produced again on demand ([`ParsedIds::lines`]). Nothing is kept
/// per invalid line, so a 64 MiB file of anything costs its text and no more.
#[derive(Debug, Clone, Default)]
pub struct ParsedIds {
    sources: Vec<Source>,
    ids: Vec<String>,
    counts: InputCounts,
    sample: Vec<InputLine>,
    next_line: usize,
}

/// Where lines come from.
#[derive(Debug, Clone)]
enum Source {
    /// A file, standard input or pasted text; its lines count from 1.
    Text(Arc<String>),
    /// Command-line arguments; each argument's position is its line.
    Args {
        args: Arc<[String]>,
        first_line: usize,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputCounts {
    pub valid: usize,
    pub invalid: usize,
    pub duplicates: usize,
}

/// An input as the job manifest keeps it: its lines come out again exactly as they did, line
/// numbers and all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SavedInput {
    Text(String),
    #[serde(rename_all = "camelCase")]
    Args {
        args: Vec<String>,
        first_line: usize,
    },
}

/// An input's sources without its parsed IDs: what the job manifest keeps. Cloning shares
/// the text; serializing writes it without a copy (a pasted list may be tens of megabytes).
#[derive(Debug, Clone)]
pub struct InputSources(Vec<Source>);

impl Serialize for InputSources {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        enum Saved<'a> {
            Text(&'a str),
            #[serde(rename_all = "camelCase")]
            Args {
                args: &'a [String],
                first_line: usize,
            },
        }
        s.collect_seq(self.0.iter().map(|src| match src {
            Source::Text(t) => Saved::Text(t.as_str()),
            Source::Args { args, first_line } => Saved::Args {
                args,
                first_line: *first_line,
            },
        }))
    }
}

/// How many invalid lines [`ParsedIds::invalid_sample`] keeps.
pub const INVALID_SAMPLE: usize = 100;

impl ParsedIds {
    fn from_sources(sources: Vec<Source>) -> ParsedIds {
        let (mut ids, mut counts, mut sample, mut next_line) =
            (Vec::new(), InputCounts::default(), Vec::new(), 1);
        for l in entries(&sources) {
            next_line = next_line.max(l.line + 1);
            match l.entry {
                Entry::Valid { id } => {
                    counts.valid += 1;
                    ids.push(id);
                }
                Entry::Duplicate { .. } => counts.duplicates += 1,
                Entry::Invalid { .. } => {
                    counts.invalid += 1;
                    if sample.len() < INVALID_SAMPLE {
                        sample.push(l);
                    }
                }
            }
        }
        ParsedIds {
            sources,
            ids,
            counts,
            sample,
            next_line,
        }
    }

    /// The IDs to download, in input order, each once.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    pub fn unique_ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    pub fn counts(&self) -> InputCounts {
        self.counts
    }

    /// Entries in all (valid, duplicate and invalid): one report row each.
    pub fn total(&self) -> usize {
        self.counts.valid + self.counts.invalid + self.counts.duplicates
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// The line number after the last one seen (where arguments given next start).
    pub fn next_line(&self) -> usize {
        self.next_line.max(1)
    }

    /// The first [`INVALID_SAMPLE`] invalid lines, to show at once.
    pub fn invalid_sample(&self) -> &[InputLine] {
        &self.sample
    }

    /// Every entry again, in input order, made one at a time from the sources.
    pub fn lines(&self) -> impl Iterator<Item = InputLine> + '_ {
        entries(&self.sources)
    }

    /// The sources alone, shared rather than copied, to be saved (they serialize as a list
    /// of [`SavedInput`]) and read back with [`ParsedIds::from_saved`].
    pub fn sources(&self) -> InputSources {
        InputSources(self.sources.clone())
    }

    pub fn from_saved(saved: Vec<SavedInput>) -> ParsedIds {
        let sources = saved
            .into_iter()
            .map(|s| match s {
                SavedInput::Text(t) => Source::Text(Arc::new(t)),
                SavedInput::Args { args, first_line } => Source::Args {
                    args: args.into(),
                    first_line,
                },
            })
            .collect();
        ParsedIds::from_sources(sources)
    }

    /// Appends another input, re-checking duplicates across both.
    pub fn merge(self, other: ParsedIds) -> ParsedIds {
        let mut sources = self.sources;
        sources.extend(other.sources);
        ParsedIds::from_sources(sources)
    }
}

/// A token of a source before it is classified.
struct Raw<'a> {
    line: usize,
    text: Cow<'a, str>,
    /// Set when the source already knows the line is unusable (an unreadable CSV row).
    problem: Option<&'static str>,
}

/// The entries of `sources` in order, classified (valid, duplicate, invalid) as they come.
fn entries(sources: &[Source]) -> impl Iterator<Item = InputLine> + '_ {
    let mut seen: HashMap<String, usize> = HashMap::new();
    sources.iter().flat_map(raw_tokens).map(move |raw| {
        let input = raw.text.trim().to_string();
        let entry = match raw.problem {
            Some(reason) => Entry::Invalid {
                reason: reason.to_string(),
            },
            None => match normalise_id(&input) {
                Err(reason) => Entry::Invalid { reason },
                Ok(id) => match seen.get(&id) {
                    Some(&first_line) => Entry::Duplicate { id, first_line },
                    None => {
                        seen.insert(id.clone(), raw.line);
                        Entry::Valid { id }
                    }
                },
            },
        };
        InputLine {
            line: raw.line,
            input,
            entry,
        }
    })
}

fn raw_tokens(source: &Source) -> Box<dyn Iterator<Item = Raw<'_>> + '_> {
    match source {
        Source::Args { args, first_line } => {
            let first = *first_line;
            Box::new(args.iter().enumerate().flat_map(move |(i, arg)| {
                tokens(arg).map(move |t| Raw {
                    line: first + i,
                    text: Cow::Borrowed(t),
                    problem: None,
                })
            }))
        }
        Source::Text(text) => {
            // A BOM that came along with pasted or piped text is not part of the first ID.
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            match header_column(first_line) {
                Some((delim, col)) => csv_tokens(text, delim, col),
                None => Box::new(text.lines().enumerate().flat_map(|(i, line)| {
                    tokens(line).map(move |t| Raw {
                        line: i + 1,
                        text: Cow::Borrowed(t),
                        problem: None,
                    })
                })),
            }
        }
    }
}

fn tokens(line: &str) -> impl Iterator<Item = &str> {
    line.split(is_separator).filter(|t| !t.trim().is_empty())
}

/// The `col` cells of a CSV whose header names a fileId column, row by row.
fn csv_tokens(text: &str, delim: u8, col: usize) -> Box<dyn Iterator<Item = Raw<'_>> + '_> {
    let reader = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    Box::new(
        reader
            .into_records()
            .filter_map(move |record| match record {
                Ok(rec) => {
                    let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
                    match rec.get(col) {
                        Some(v) if !v.trim().is_empty() => Some(Raw {
                            line,
                            text: Cow::Owned(v.to_string()),
                            problem: None,
                        }),
                        _ if rec.iter().all(|f| f.trim().is_empty()) => None,
                        _ => Some(Raw {
                            line,
                            text: Cow::Owned(rec.iter().collect::<Vec<_>>().join(",")),
                            problem: Some("no fileId in this row"),
                        }),
                    }
                }
                Err(e) => Some(Raw {
                    line: e.position().map(|p| p.line() as usize).unwrap_or(0),
                    text: Cow::Borrowed(""),
                    problem: Some("unreadable CSV row"),
                }),
            }),
    )
}

/// Normalises a file ID, or says why it is not one.
pub fn normalise_id(token: &str) -> Result<String, String> {
    let t = token.trim().trim_matches('"');
    match uuid::Uuid::try_parse(t) {
        Ok(u) if t.len() == 36 => Ok(u.hyphenated().to_string()),
        // The input is in its own column: the reason does not repeat it.
        _ => Err(
            "not a TDP file ID (expected a UUID such as 3f2b8c1e-5d4a-4e2b-9c1d-7a6b5c4d3e2f)"
                .to_string(),
        ),
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
        if !bytes.len().is_multiple_of(2) {
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

/// Parses one text (pasted text; a copy is kept).
pub fn parse_ids(text: &str) -> ParsedIds {
    parse_text(text.to_string())
}

/// Parses one text (a file or standard input), keeping it without a copy.
pub fn parse_text(text: String) -> ParsedIds {
    ParsedIds::from_sources(vec![Source::Text(Arc::new(text))])
}

/// Parses IDs given as command-line arguments; each argument's position is its line.
pub fn parse_args(args: &[String], first_line: usize) -> ParsedIds {
    ParsedIds::from_sources(vec![Source::Args {
        args: args.into(),
        first_line,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3f2b8c1e-5d4a-4e2b-9c1d-7a6b5c4d3e2f";
    const B: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    fn valid(text: &str) -> Vec<String> {
        let p = parse_ids(text);
        assert_eq!(p.counts().invalid, 0, "{:?}", p.invalid_sample());
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
        let bad = &p.invalid_sample()[0];
        assert_eq!((bad.line, bad.input.as_str()), (3, "not-an-id"));
        let lines: Vec<InputLine> = p.lines().collect();
        assert!(matches!(
            lines[3].entry,
            Entry::Duplicate { first_line: 1, .. }
        ));
        assert_eq!(lines.len(), p.total());
    }

    #[test]
    fn csv_with_file_id_column() {
        let text = format!("name,fileId,size\na.csv,{A},3\nb.csv,\"{B}\",4\nc.csv,oops,5\n");
        let p = parse_ids(&text);
        assert_eq!(p.unique_ids(), vec![A.to_string(), B.to_string()]);
        let bad = &p.invalid_sample()[0];
        assert_eq!(bad.line, 4);
    }

    #[test]
    fn simple_uuid_without_hyphens_is_refused() {
        assert!(normalise_id(&A.replace('-', "")).is_err());
        assert_eq!(normalise_id(&format!(" {} ", A.to_uppercase())).unwrap(), A);
    }
}
