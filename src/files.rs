//! Attached files: what a document is (from its content, never its name), whether a file
//! question accepts it, and how its name is made safe to store and to send back.

use std::io::{Cursor, Read};

use sha2::{Digest, Sha256};

use crate::survey::answer::{FieldError, FileItem, Item};
use crate::survey::FileType;

/// One file as a form sent it: its name, the type the browser declared, and its bytes, or
/// only its size when it was larger than the question allows (the bytes were not kept).
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub declared_type: String,
    pub content: Content,
}

#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    /// Larger than the limit: read and dropped.
    TooLarge,
}

/// What a section form sent for one file question: files to attach, and the ids of attached
/// files to remove (`<id>.remove` boxes).
#[derive(Debug, Clone, Default)]
pub struct FilePost {
    pub uploads: Vec<Upload>,
    pub remove: Vec<String>,
}

/// A file question's post, checked before the save: the files to add with their new ids, and
/// the ids to remove.
#[derive(Debug, Clone)]
pub struct CheckedPost {
    pub added: Vec<(String, Accepted)>,
    pub remove: Vec<String>,
}

impl CheckedPost {
    /// Check every upload of `post`; the first refused one is the question's error.
    pub fn of(post: &FilePost, limits: Limits) -> Result<CheckedPost, FieldError> {
        let mut added = Vec::new();
        for upload in &post.uploads {
            added.push((crate::db::new_id(), check(upload.clone(), limits)?));
        }
        Ok(CheckedPost {
            added,
            remove: post.remove.clone(),
        })
    }

    /// The question's items after this post, from its stored ones (sorted by item, as stored),
    /// or why it is refused (more files than allowed).
    pub fn items(&self, stored: &[Item], max_files: usize) -> Result<Vec<Item>, FieldError> {
        // A file attached replaces a non-answer ("not known"...): never mixed with files.
        let attaching = !self.added.is_empty();
        let mut items: Vec<Item> = stored
            .iter()
            .filter(|i| !self.remove.contains(&i.item))
            .filter(|i| !(attaching && i.item.starts_with('#')))
            .cloned()
            .collect();
        for (id, file) in &self.added {
            items.push(
                FileItem {
                    id: id.clone(),
                    sha256: file.sha256.clone(),
                    name: file.name.clone(),
                    size: file.bytes.len() as u64,
                }
                .item(),
            );
        }
        if items.len() > max_files {
            return Err(refused(
                "file-too-many",
                vec![("max", max_files.to_string())],
            ));
        }
        items.sort_by(|a, b| a.item.cmp(&b.item));
        Ok(items)
    }

    /// The ids of stored files this post removes.
    pub fn removed<'a>(&'a self, stored: &'a [Item]) -> impl Iterator<Item = &'a String> + 'a {
        stored
            .iter()
            .filter(|i| self.remove.contains(&i.item))
            .map(|i| &i.item)
    }
}

/// An upload that passed every check: ready to be stored.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub name: String,
    pub declared_type: String,
    pub detected: FileType,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

/// The limits of a file question.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    pub max_size_mb: u32,
    pub accept: &'a [FileType],
}

pub const MB: u64 = 1024 * 1024;

fn refused(message_id: &'static str, args: Vec<(&'static str, String)>) -> FieldError {
    FieldError { message_id, args }
}

/// Check one upload against a question's limits: not empty, not too large, of an accepted
/// type recognised from its content, and named with that type's extension.
pub fn check(upload: Upload, limits: Limits) -> Result<Accepted, FieldError> {
    let name = sanitise_name(&upload.name);
    let bytes = match upload.content {
        Content::TooLarge => {
            return Err(refused(
                "file-too-large",
                vec![("name", name), ("max", limits.max_size_mb.to_string())],
            ))
        }
        Content::Bytes(b) => b,
    };
    if bytes.is_empty() {
        return Err(refused("file-empty", vec![("name", name)]));
    }
    if bytes.len() as u64 > u64::from(limits.max_size_mb) * MB {
        return Err(refused(
            "file-too-large",
            vec![("name", name), ("max", limits.max_size_mb.to_string())],
        ));
    }
    let types = || {
        limits
            .accept
            .iter()
            .map(|t| t.code().to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let detected = detect(&bytes)
        .filter(|t| limits.accept.contains(t))
        // The name must say what the content is: a spreadsheet called .pdf is refused too.
        .filter(|t| FileType::of_name(&name) == Some(*t));
    let Some(detected) = detected else {
        return Err(refused(
            "file-wrong-type",
            vec![("name", name), ("types", types())],
        ));
    };
    Ok(Accepted {
        sha256: hex::encode(Sha256::digest(&bytes)),
        name,
        declared_type: upload.declared_type.chars().take(100).collect(),
        detected,
        bytes,
    })
}

/// The type of a document, from its content.
pub fn detect(bytes: &[u8]) -> Option<FileType> {
    if bytes.starts_with(b"%PDF-") {
        return Some(FileType::Pdf);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(FileType::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(FileType::Jpeg);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return detect_zip(bytes);
    }
    is_csv(bytes).then_some(FileType::Csv)
}

/// Office documents are zip files: Word and Excel by their entries' names (`word/`, `xl/`),
/// OpenDocument by its stored `mimetype` entry. Only the central directory is read, and the
/// one tiny `mimetype` entry: nothing large is ever decompressed.
fn detect_zip(bytes: &[u8]) -> Option<FileType> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    // An archive carrying a program or macros is not a document, whatever else it holds.
    if names.iter().any(|n| carries_code(n)) {
        return None;
    }
    let has = |name: &str| names.iter().any(|n| n == name);
    if has("[Content_Types].xml") {
        if has("word/document.xml") {
            return Some(FileType::Docx);
        }
        if has("xl/workbook.xml") {
            return Some(FileType::Xlsx);
        }
        return None;
    }
    let mut entry = archive.by_name("mimetype").ok()?;
    if entry.size() > 200 {
        return None;
    }
    let mut mimetype = String::new();
    (&mut entry).take(200).read_to_string(&mut mimetype).ok()?;
    match mimetype.trim() {
        "application/vnd.oasis.opendocument.text" => Some(FileType::Odt),
        "application/vnd.oasis.opendocument.spreadsheet" => Some(FileType::Ods),
        _ => None,
    }
}

/// Whether an archive entry is code or climbs out of the archive: macros (`vbaProject.bin` of
/// a .docm/.xlsm renamed, OpenDocument's `Basic/` and `Scripts/`), programs and scripts by
/// their extension, and absolute or `..` paths, none of which an office suite writes into a
/// .docx, .xlsx, .odt or .ods.
fn carries_code(entry: &str) -> bool {
    let lower = entry.to_ascii_lowercase().replace('\\', "/");
    if lower.starts_with('/') || lower.split('/').any(|part| part == "..") {
        return true;
    }
    if lower.starts_with("basic/") || lower.starts_with("scripts/") {
        return true;
    }
    let file = lower.rsplit('/').next().unwrap_or(&lower);
    if file == "vbaproject.bin" || file == "vbadata.xml" {
        return true;
    }
    let programs = [
        "exe", "dll", "com", "scr", "pif", "bat", "cmd", "ps1", "vbs", "vbe", "js", "jse", "wsf",
        "wsh", "hta", "msi", "jar", "lnk", "sh", "elf", "so", "dylib", "app", "apk",
    ];
    file.rsplit_once('.')
        .is_some_and(|(_, ext)| programs.contains(&ext))
}

/// CSV: UTF-8 text without NUL or control bytes (tabs and line breaks aside), and not HTML.
fn is_csv(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return false;
    }
    let head: String = text.chars().take(1024).collect::<String>().to_lowercase();
    let markup = [
        "<!doctype",
        "<html",
        "<script",
        "<svg",
        "<?xml",
        "<body",
        "<head",
    ];
    !head.trim_start().starts_with('<') && !markup.iter().any(|m| head.contains(m))
}

/// A file name safe to store, show and send back: the last path component, without control
/// or formatting characters, quotes or path separators, at most 150 characters.
pub fn sanitise_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && !crate::review::unprintable(*c) && !is_bidi_mark(*c))
        .map(|c| match c {
            '"' | ':' | '*' | '?' | '<' | '>' | '|' | ';' => '_',
            c => c,
        })
        .collect();
    // Leading dots and spaces in any order (". .x" would be ".x", a hidden name).
    let clean = clean
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end();
    let clean: String = if clean.chars().count() > 150 {
        // Keep the extension, which says the type.
        match clean.rsplit_once('.') {
            Some((stem, ext)) if ext.len() <= 10 => {
                let stem: String = stem.chars().take(140).collect();
                format!("{stem}.{ext}")
            }
            _ => {
                let cut: String = clean.chars().take(150).collect();
                cut.trim_end().to_string()
            }
        }
    } else {
        clean.to_string()
    };
    if clean.is_empty() {
        "file".to_string()
    } else {
        clean
    }
}

/// The bidi marks that `review::unprintable` lets through (left-to-right, right-to-left and
/// Arabic letter marks): invisible, they have no place in a file name.
fn is_bidi_mark(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// The `Content-Disposition` of a download: always an attachment, with an ASCII fallback name
/// and the real one in RFC 5987 form.
pub fn content_disposition(name: &str) -> String {
    let name = sanitise_name(name);
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// A size as people read it: "512 bytes", "34 KB", "2.5 MB" (with the language's decimal sign).
pub fn human_size(lang: &str, bytes: u64) -> String {
    if bytes < 1024 {
        return crate::i18n::translate(lang, "file-bytes", &[("n", bytes.to_string())]);
    }
    let (n, unit) = if bytes < MB {
        (bytes as f64 / 1024.0, "KB")
    } else {
        (bytes as f64 / MB as f64, "MB")
    };
    let shown = format!("{:.1}", n);
    let shown = shown.strip_suffix(".0").unwrap_or(&shown);
    format!("{} {unit}", crate::i18n::format_number(lang, shown))
}

/// Names made unique within one folder of the zip export: "a.pdf", "a (2).pdf"...
pub fn unique_name(taken: &mut std::collections::HashSet<String>, name: &str) -> String {
    let name = sanitise_name(name);
    if taken.insert(name.to_lowercase()) {
        return name;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s.to_string(), format!(".{e}")),
        None => (name.clone(), String::new()),
    };
    let mut n = 2;
    loop {
        let candidate = format!("{stem} ({n}){ext}");
        if taken.insert(candidate.to_lowercase()) {
            return candidate;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits<'static> {
        Limits {
            max_size_mb: 1,
            accept: &FileType::ALL,
        }
    }

    fn up(name: &str, bytes: &[u8]) -> Upload {
        Upload {
            name: name.into(),
            declared_type: "application/octet-stream".into(),
            content: Content::Bytes(bytes.to_vec()),
        }
    }

    #[test]
    fn types_come_from_the_content() {
        assert_eq!(detect(b"%PDF-1.7\n"), Some(FileType::Pdf));
        assert_eq!(detect(b"a,b\n1,2\n"), Some(FileType::Csv));
        assert_eq!(detect(b"<html><body>hi</body></html>"), None);
        assert_eq!(detect(b"MZ\x90\x00\x03\x00"), None);
        assert!(check(up("plan.pdf", b"%PDF-1.4 x"), limits()).is_ok());
        let html = check(up("plan.pdf", b"<!DOCTYPE html><p>x"), limits());
        assert_eq!(html.unwrap_err().message_id, "file-wrong-type");
        let exe = check(up("annex.pdf", b"MZ\x90\x00\x03\x00\x00"), limits());
        assert_eq!(exe.unwrap_err().message_id, "file-wrong-type");
        let renamed = check(up("data.csv", b"%PDF-1.4"), limits());
        assert_eq!(renamed.unwrap_err().message_id, "file-wrong-type");
        assert_eq!(
            check(up("e.pdf", b""), limits()).unwrap_err().message_id,
            "file-empty"
        );
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut out = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in entries {
            zip.start_file(*name, stored).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn office_documents_are_told_apart_by_their_entries() {
        let types = b"<Types/>".as_slice();
        let xlsx = zip_of(&[("[Content_Types].xml", types), ("xl/workbook.xml", b"<w/>")]);
        assert_eq!(detect(&xlsx), Some(FileType::Xlsx));
        let docx = zip_of(&[
            ("[Content_Types].xml", types),
            ("word/document.xml", b"<d/>"),
        ]);
        assert_eq!(detect(&docx), Some(FileType::Docx));
        let odt = zip_of(&[("mimetype", b"application/vnd.oasis.opendocument.text")]);
        assert_eq!(detect(&odt), Some(FileType::Odt));
        let ods = zip_of(&[(
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        )]);
        assert_eq!(detect(&ods), Some(FileType::Ods));
        // Any other zip (a jar, an archive of executables) is not a document.
        let other = zip_of(&[("payload.exe", b"MZ")]);
        assert_eq!(detect(&other), None);
        // Nor is a document's shape with a program, macros or a climbing path inside.
        for extra in [
            "payload.exe",
            "word/media/run.JS",
            "word/vbaProject.bin",
            "../../x",
        ] {
            let docx = zip_of(&[
                ("[Content_Types].xml", types),
                ("word/document.xml", b"<d/>"),
                (extra, b"x"),
            ]);
            assert_eq!(detect(&docx), None, "{extra}");
        }
        let xlsm = zip_of(&[
            ("[Content_Types].xml", types),
            ("xl/workbook.xml", b"<w/>"),
            ("xl/vbaProject.bin", b"x"),
        ]);
        assert_eq!(detect(&xlsm), None);
        let odt_macros = zip_of(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("Basic/Standard/Module1.xml", b"<m/>"),
        ]);
        assert_eq!(detect(&odt_macros), None);
        // A `word/` folder without its document is not a Word document.
        let hollow = zip_of(&[("[Content_Types].xml", types), ("word/x.xml", b"<x/>")]);
        assert_eq!(detect(&hollow), None);
        assert!(check(up("sheet.xlsx", &ods), limits()).is_err());
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitise_name("C:\\Users\\x\\..\\plan\".pdf"), "plan_.pdf");
        assert_eq!(sanitise_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_name("\u{202e}fdp.exe"), "fdp.exe");
        assert_eq!(sanitise_name(""), "file");
        // Found by the attachment fuzz target: bidi marks kept, and names that changed when
        // sanitised again (a dot left in front, a space left at the end of a cut).
        assert_eq!(
            sanitise_name("report\u{200f}.pdf\u{200e}\u{61c}"),
            "report.pdf"
        );
        assert_eq!(sanitise_name(". .x.pdf"), "x.pdf");
        let cut = sanitise_name(&format!("{} b.verylongextension", "a".repeat(149)));
        assert_eq!(cut, "a".repeat(149));
        for raw in [
            ". .x.pdf",
            " . . x",
            &format!("{} b.verylongextension", "a".repeat(149)),
        ] {
            let once = sanitise_name(raw);
            assert_eq!(sanitise_name(&once), once, "{raw:?}");
        }
        let cd = content_disposition("Stratégie nationale.pdf");
        assert!(cd.starts_with("attachment; filename=\"Strat_gie nationale.pdf\""));
        assert!(cd.ends_with("filename*=UTF-8''Strat%C3%A9gie%20nationale.pdf"));
        let mut taken = Default::default();
        assert_eq!(unique_name(&mut taken, "a.pdf"), "a.pdf");
        assert_eq!(unique_name(&mut taken, "A.pdf"), "A (2).pdf");
    }
}
