//! File names that are safe on Windows, macOS and Linux, taken from the object key or
//! `Content-Disposition`, and relative paths that cannot leave the destination.

use percent_encoding::percent_decode_str;
use std::path::{Path, PathBuf};
use unicode_normalization::UnicodeNormalization;

/// The longest name most file systems take (ext4, APFS; NTFS counts UTF-16 units).
pub const MAX_NAME_BYTES: usize = 255;
/// Windows' device names, which it takes for the device whatever the extension (`CON.txt`),
/// including the superscript digits it reads as ports, `COM0`/`LPT0` and the console's own.
const RESERVED: [&str; 32] = [
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "COM0",
    "COM1",
    "COM2",
    "COM3",
    "COM4",
    "COM5",
    "COM6",
    "COM7",
    "COM8",
    "COM9",
    "COM\u{b9}",
    "COM\u{b2}",
    "COM\u{b3}",
    "LPT0",
    "LPT1",
    "LPT2",
    "LPT3",
    "LPT4",
    "LPT5",
    "LPT6",
    "LPT7",
    "LPT8",
    "LPT9",
    "LPT\u{b9}",
    "LPT\u{b2}",
    "LPT\u{b3}",
    "CONIN$",
    "CONOUT$",
];

/// Which names the destination's file system takes for the same: found by probing it, since
/// ext4 and most Linux file systems tell `A.txt` from `a.txt`, NTFS, APFS and SMB shares do
/// not, and APFS also takes the composed and decomposed forms of `é` for one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameFolding {
    pub case: bool,
    pub composition: bool,
}

impl NameFolding {
    /// Creates a file in `dir` and looks it up in another case and in another Unicode
    /// composition. When no file can be made, both are assumed: that only costs suffixes.
    pub fn probe(dir: &Path) -> NameFolding {
        let stem = format!(".name-probe-{}-", std::process::id());
        let made = dir.join(format!("{stem}A\u{e9}"));
        if crate::store::paths::no_follow()
            .write(true)
            .create_new(true)
            .open(&made)
            .is_err()
        {
            return NameFolding {
                case: true,
                composition: true,
            };
        }
        let found = |name: String| dir.join(name).symlink_metadata().is_ok();
        let folding = NameFolding {
            case: found(format!("{stem}a\u{e9}")),
            composition: found(format!("{stem}Ae\u{301}")),
        };
        let _ = std::fs::remove_file(&made);
        folding
    }

    /// The form of `name` under which the file system files it.
    pub fn key(self, name: &str) -> String {
        let composed: String = if self.composition {
            name.nfc().collect()
        } else {
            name.to_string()
        };
        if self.case {
            composed.to_lowercase()
        } else {
            composed
        }
    }
}

/// How files are placed under the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Every file directly in the destination, colliding names made unique.
    #[default]
    Flat,
    /// The object key's folders (without the bucket) below the destination.
    Mirror,
}

/// One path component made safe everywhere: no separators, reserved characters or control
/// characters, no trailing dots or spaces, no reserved device names. Its length is the
/// state's business: it knows the file system's limit.
pub fn safe_component(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    while s.ends_with('.') || s.ends_with(' ') {
        s.pop();
    }
    if s.is_empty() {
        return "_".to_string();
    }
    let stem = s
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_ascii_uppercase();
    if RESERVED.contains(&stem.as_str()) {
        s.insert(0, '_');
    }
    s
}

/// Splits `name.ext` into ("name", ".ext"); a leading dot is not an extension.
pub fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = split_extension(name);
    let keep = floor_char_boundary(stem, max.saturating_sub(ext.len()));
    format!("{}{ext}", &stem[..keep])
}

/// The name with a deterministic suffix from the file ID, for a name already taken; at most
/// `limit` bytes.
pub fn with_suffix(name: &str, file_id: &str, long: bool, limit: usize) -> String {
    let (stem, ext) = split_extension(name);
    let short: String = if long {
        file_id.to_string()
    } else {
        file_id.chars().filter(|c| *c != '-').take(8).collect()
    };
    let suffix = format!("~{short}{ext}");
    let keep = floor_char_boundary(stem, limit.saturating_sub(suffix.len()));
    format!("{}{suffix}", &stem[..keep])
}

/// A name shortened to at most `limit` bytes, keeping its extension.
pub fn fit(name: &str, limit: usize) -> String {
    truncate_keeping_extension(name, limit)
}

/// The name of last resort, for a file whose own name the file system refuses:
/// `<fileId><ext>`, which any file system takes.
pub fn fallback_name(file_id: &str, name: &str) -> String {
    let (_, ext) = split_extension(name);
    let ext: String = ext
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    format!("{file_id}{}", if ext.len() > 1 { ext.as_str() } else { "" })
}

/// The longest file name the file system at `dir` takes, in bytes, as it says itself
/// (eCryptfs home folders take 143, most others 255).
pub fn name_limit(dir: &std::path::Path) -> usize {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) {
            // SAFETY: a valid NUL-terminated path; pathconf only reads it.
            let n = unsafe { libc::pathconf(c.as_ptr(), libc::_PC_NAME_MAX) };
            if n > 0 {
                return (n as usize).min(MAX_NAME_BYTES);
            }
        }
    }
    let _ = dir;
    MAX_NAME_BYTES
}

/// Whether an I/O error says the file system refuses a name (too long, bad encoding, not
/// allowed), rather than a problem with the disk or the folder.
pub fn is_name_refused(e: &std::io::Error) -> bool {
    match e.raw_os_error() {
        #[cfg(unix)]
        Some(code) => [libc::ENAMETOOLONG, libc::EILSEQ, libc::EINVAL].contains(&code),
        // ERROR_INVALID_NAME, ERROR_FILENAME_EXCED_RANGE
        #[cfg(windows)]
        Some(code) => [123, 206].contains(&code),
        _ => false,
    }
}

/// The object key from a pre-signed URL: virtual-hosted (`bucket.s3....amazonaws.com/key`)
/// or path-style (`host/bucket/key`).
pub fn object_key(url: &url::Url) -> Vec<String> {
    let host = url.host_str().unwrap_or("");
    let virtual_hosted =
        (host.contains(".s3.") || host.contains(".s3-")) && !host.starts_with("s3.");
    let mut segments: Vec<String> = url
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    if !virtual_hosted && !segments.is_empty() {
        segments.remove(0);
    }
    segments
}

/// The file name from `Content-Disposition` (`filename*=UTF-8''...` preferred), if any.
pub fn disposition_filename(value: &str) -> Option<String> {
    let mut plain = None;
    for part in value.split(';').map(str::trim) {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let enc = v.trim().trim_matches('"');
                let raw = enc.split_once("''").map(|(_, r)| r).unwrap_or(enc);
                let name = percent_decode_str(raw).decode_utf8_lossy().into_owned();
                if !name.is_empty() {
                    return Some(name);
                }
            }
            "filename" => plain = Some(v.trim().trim_matches('"').to_string()),
            _ => {}
        }
    }
    plain.filter(|n| !n.is_empty())
}

/// The relative path a file gets under the destination, before collision handling.
/// `name` is the file's own name (Content-Disposition or the key's last segment); only its
/// last path segment counts, so `../x` cannot climb.
pub fn relative_path(layout: Layout, key: &[String], name: &str) -> PathBuf {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let file = safe_component(last);
    let mut path = PathBuf::new();
    if layout == Layout::Mirror && key.len() > 1 {
        for folder in &key[..key.len() - 1] {
            path.push(safe_component(folder));
        }
    }
    path.push(file);
    path
}

/// The key a relative name is known by in the store: its file-system folding, hashed.
pub(crate) fn path_hash(folding: NameFolding, rel: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    folding.key(rel).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_follows_what_the_file_system_does() {
        let dir = tempfile::tempdir().unwrap();
        // Linux's (ext4, overlayfs, tmpfs) tell both apart; NTFS folds case only (so does
        // Wine, over a Linux file system); APFS, as macOS formats it, folds both.
        let here = NameFolding::probe(dir.path());
        let expected = NameFolding {
            case: cfg!(any(windows, target_os = "macos")),
            composition: cfg!(target_os = "macos"),
        };
        assert_eq!(here, expected);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "probe removed"
        );
        assert_eq!(
            here.key("A\u{e9}.txt") == here.key("a\u{e9}.txt"),
            expected.case
        );
        // As NTFS, APFS or an SMB share would.
        let apfs = NameFolding {
            case: true,
            composition: true,
        };
        assert_eq!(apfs.key("Ae\u{301}.TXT"), apfs.key("a\u{e9}.txt"));
        // Where the probe cannot write, both are assumed.
        assert_eq!(NameFolding::probe(&dir.path().join("missing")), apfs);
    }
    use std::path::{Component, Path};

    /// True when `rel` is a plain relative path that stays below its base.
    fn stays_inside(rel: &Path) -> bool {
        rel.components().all(|c| matches!(c, Component::Normal(_)))
    }

    #[test]
    fn unsafe_names_become_safe() {
        assert_eq!(
            safe_component("a<b>c:d\"e|f?g*h.txt"),
            "a_b_c_d_e_f_g_h.txt"
        );
        assert_eq!(safe_component("CON.txt"), "_CON.txt");
        assert_eq!(safe_component("aux"), "_aux");
        assert_eq!(safe_component("console.txt"), "console.txt");
        // Windows reads superscript digits as port numbers too, and has COM0, LPT0 and the
        // console's names; a space before the dot does not save a device name.
        assert_eq!(safe_component("COM\u{b9}.txt"), "_COM\u{b9}.txt");
        assert_eq!(safe_component("lpt\u{b3}"), "_lpt\u{b3}");
        assert_eq!(safe_component("LPT0.csv"), "_LPT0.csv");
        assert_eq!(safe_component("CONIN$.log"), "_CONIN$.log");
        assert_eq!(safe_component("nul .tar.gz"), "_nul .tar.gz");
        assert_eq!(safe_component("COM10.txt"), "COM10.txt");
        assert_eq!(safe_component("report.txt. "), "report.txt");
        assert_eq!(safe_component("trailing. . "), "trailing");
        assert_eq!(safe_component(".."), "_");
        assert_eq!(safe_component("tab\there"), "tab_here");
        assert_eq!(safe_component(".hidden"), ".hidden");
        let long = format!("{}.json", "é".repeat(200));
        let s = fit(&safe_component(&long), 255);
        assert!(s.len() <= 255 && s.ends_with(".json"));
    }

    #[test]
    fn traversal_cannot_leave_the_destination() {
        let key: Vec<String> = ["org", "..", "..", "etc", "passwd"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = relative_path(Layout::Mirror, &key, "../../passwd");
        assert!(stays_inside(&p));
        assert_eq!(p, PathBuf::from("org/_/_/etc/passwd"));
        assert_eq!(
            relative_path(Layout::Flat, &key, "..\\..\\boot.ini"),
            PathBuf::from("boot.ini")
        );
    }

    #[test]
    fn keys_from_path_style_and_virtual_hosted_urls() {
        let u = url::Url::parse("http://127.0.0.1:9/bucket/org/a%20b/0.json?x=1").unwrap();
        assert_eq!(object_key(&u), vec!["org", "a b", "0.json"]);
        let u = url::Url::parse("https://bkt.s3.us-east-1.amazonaws.com/org/x/1.json?X=1").unwrap();
        assert_eq!(object_key(&u), vec!["org", "x", "1.json"]);
    }

    #[test]
    fn disposition_names() {
        assert_eq!(
            disposition_filename("attachment; filename=\"a b.csv\"").as_deref(),
            Some("a b.csv")
        );
        assert_eq!(
            disposition_filename("attachment; filename=\"x\"; filename*=UTF-8''%C2%B5.csv")
                .as_deref(),
            Some("µ.csv")
        );
        assert_eq!(disposition_filename("inline"), None);
    }

    #[test]
    fn suffixes_are_deterministic() {
        let id = "3f2b8c1e-5d4a-4e2b-9c1d-7a6b5c4d3e2f";
        assert_eq!(with_suffix("0.json", id, false, 255), "0~3f2b8c1e.json");
        assert_eq!(with_suffix("README", id, false, 255), "README~3f2b8c1e");
        let long = format!("{}.json", "x".repeat(200));
        assert_eq!(with_suffix(&long, id, true, 143).len(), 143);
        assert_eq!(fallback_name(id, &long), format!("{id}.json"));
        assert_eq!(fallback_name(id, "README"), id);
    }
}
