//! The zip export: the responses CSV and its codebook, and every attached file of the
//! responses that count, under `files/<ISO3>/<question>/<name>` (names made safe, and unique
//! within their folder). Files come from the counted version's answers, as every result does.

use std::collections::{HashMap, HashSet};
use std::io::Write;

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

/// Write the bundle to `out`, reading each file's content through `conn`.
pub fn write_zip<W: Write>(
    conn: &mut DbConn,
    survey: &Survey,
    rows: &[ExportRow],
    out: W,
) -> Result<usize, ExportError> {
    write_zip_with(survey, rows, |id| content(conn, id), out)
}

/// The content of one stored file, or None if it went away since the rows were read.
pub fn content(conn: &mut DbConn, id: &str) -> Result<Option<Vec<u8>>, ExportError> {
    let found = files::contents(conn, &[id.to_string()])?;
    Ok(found.into_iter().next().map(|(_, bytes)| bytes))
}

/// Write the bundle as a stream: `out` need not seek (a file, or an HTTP body fed chunk by
/// chunk), each entry's sizes follow its data, and `read` fetches one file's content at a
/// time, so memory holds one file and the writer's buffer whatever the total. The number of
/// files written.
pub fn write_zip_with<W, F>(
    survey: &Survey,
    rows: &[ExportRow],
    mut read: F,
    out: W,
) -> Result<usize, ExportError>
where
    W: Write,
    F: FnMut(&str) -> Result<Option<Vec<u8>>, ExportError>,
{
    let mut zip = ZipWriter::new_stream(out);
    let text = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    // Documents are mostly compressed already: stored as they are.
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    zip.start_file("responses.csv", text)?;
    zip.write_all(to_csv(survey, rows)?.as_bytes())?;
    zip.start_file("codebook.csv", text)?;
    zip.write_all(codebook_csv(survey)?.as_bytes())?;
    let mut written = 0;
    for entry in entries(survey, rows) {
        let Some(bytes) = read(&entry.file.id)? else {
            continue;
        };
        zip.start_file(entry.path.as_str(), stored)?;
        zip.write_all(&bytes)?;
        written += 1;
    }
    zip.finish()?.into_inner().flush()?;
    Ok(written)
}
