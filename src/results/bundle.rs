//! The zip export: the responses CSV and its codebook, and every attached file of the
//! responses that count, under `files/<ISO3>/<question>/<name>` (names made safe, and unique
//! within their folder). Files come from the counted version's answers, as every result does.

use std::collections::{HashMap, HashSet};
use std::io::{Seek, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::export::{codebook_csv, to_csv, ExportError, ExportRow};
use crate::db::{files, DbConn};
use crate::survey::answer::FileItem;
use crate::survey::Survey;

impl From<zip::result::ZipError> for ExportError {
    fn from(e: zip::result::ZipError) -> Self {
        ExportError::Io(std::io::Error::other(e))
    }
}

/// One file of the bundle: where it goes, and which stored file it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub path: String,
    pub file: FileItem,
}

/// Where each counted file goes in the bundle, in a stable order.
pub fn entries(survey: &Survey, rows: &[ExportRow]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut taken: HashMap<String, HashSet<String>> = HashMap::new();
    for row in rows {
        let iso3 = row.fixed.first().cloned().unwrap_or_default();
        for q in survey.questions().filter(|q| q.kind.is_file()) {
            let Some(items) = row.answers.get(&q.id) else {
                continue;
            };
            let folder = format!("files/{iso3}/{}", q.id);
            for file in FileItem::all(items) {
                let names = taken.entry(folder.clone()).or_default();
                let name = crate::files::unique_name(names, &file.name);
                out.push(Entry {
                    path: format!("{folder}/{name}"),
                    file,
                });
            }
        }
    }
    out
}

/// Write the bundle; each file's content is read on its own, so memory holds one at a time.
pub fn write_zip<W: Write + Seek>(
    conn: &mut DbConn,
    survey: &Survey,
    rows: &[ExportRow],
    out: W,
) -> Result<usize, ExportError> {
    let mut zip = ZipWriter::new(out);
    let text = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    // Documents are mostly compressed already: stored as they are.
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    zip.start_file("responses.csv", text)?;
    zip.write_all(to_csv(survey, rows)?.as_bytes())?;
    zip.start_file("codebook.csv", text)?;
    zip.write_all(codebook_csv(survey)?.as_bytes())?;
    let entries = entries(survey, rows);
    for entry in &entries {
        let content = files::contents(conn, std::slice::from_ref(&entry.file.id))?;
        let Some((_, bytes)) = content.into_iter().next() else {
            continue;
        };
        zip.start_file(entry.path.as_str(), stored)?;
        zip.write_all(&bytes)?;
    }
    zip.finish()?;
    Ok(entries.len())
}
