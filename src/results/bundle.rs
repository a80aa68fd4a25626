//! The zip export: the responses CSV and its codebook, and every attached file of the
//! responses that count, under `files/<ISO3>/<question>/<name>` (names made safe, and unique
//! within their folder). Files come from the counted version's answers, as every result does.

use std::cell::Cell;
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
        match e {
            // Kept as it is, so that a client gone (a broken pipe) is told from a failure.
            zip::result::ZipError::Io(e) => ExportError::Io(e),
            other => ExportError::Io(std::io::Error::other(other)),
        }
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
/// files written. On an error the archive is left without its central directory, so that
/// what was written never reads as a complete archive.
pub fn write_zip_with<W, F>(
    survey: &Survey,
    rows: &[ExportRow],
    read: F,
    out: W,
) -> Result<usize, ExportError>
where
    W: Write,
    F: FnMut(&str) -> Result<Option<Vec<u8>>, ExportError>,
{
    let stopped = Cell::new(false);
    let mut zip = ZipWriter::new_stream(UntilStopped {
        inner: out,
        stopped: &stopped,
    });
    match write_entries(&mut zip, survey, rows, read) {
        Ok(written) => {
            zip.finish()?.into_inner().inner.flush()?;
            Ok(written)
        }
        Err(e) => {
            // ZipWriter's drop would finish the archive: it writes into the void instead.
            stopped.set(true);
            drop(zip);
            Err(e)
        }
    }
}

fn write_entries<W, F>(
    zip: &mut ZipWriter<W>,
    survey: &Survey,
    rows: &[ExportRow],
    mut read: F,
) -> Result<usize, ExportError>
where
    W: Write + std::io::Seek,
    F: FnMut(&str) -> Result<Option<Vec<u8>>, ExportError>,
{
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
    Ok(written)
}

/// A writer that passes everything on until it is stopped, or its own writer fails (a client
/// gone), and then drops what it is given.
struct UntilStopped<'a, W> {
    inner: W,
    stopped: &'a Cell<bool>,
}

impl<W: Write> Write for UntilStopped<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.stopped.get() {
            return Ok(data.len());
        }
        self.inner
            .write(data)
            .inspect_err(|_| self.stopped.set(true))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.stopped.get() {
            return Ok(());
        }
        self.inner.flush().inspect_err(|_| self.stopped.set(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::survey::answer::Item;

    const SURVEY: &str = "id = \"z\"\ntitle = \"Z\"\nlanguages = [\"en\"]\n\
        [[sections]]\nid = \"s\"\ntitle = \"S\"\n\
        [[sections.questions]]\nid = \"docs\"\ntype = \"file\"\ntext = \"Docs\"\n";

    fn survey_and_rows() -> (Survey, Vec<ExportRow>) {
        let (survey, diagnostics) = crate::survey::load::parse_survey("z.toml", SURVEY);
        let survey = survey.unwrap_or_else(|| panic!("{diagnostics:?}"));
        let file = |id: &str, name: &str| FileItem {
            id: id.into(),
            sha256: "0".repeat(64),
            name: name.into(),
            size: 3,
        };
        let items: Vec<Item> = vec![file("f1", "a.pdf").item(), file("f2", "b.pdf").item()];
        let mut row = ExportRow {
            fixed: vec!["SWE".into()],
            answers: Default::default(),
        };
        row.answers.insert("docs".into(), items);
        (survey, vec![row])
    }

    #[test]
    fn a_written_bundle_reads_back_without_seeking() {
        let (survey, rows) = survey_and_rows();
        let mut out = Vec::new();
        let read = |id: &str| Ok(Some(format!("content of {id}").into_bytes()));
        let n = write_zip_with(&survey, &rows, read, &mut out).unwrap();
        assert_eq!(n, 2);
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(out)).unwrap();
        let mut names: Vec<&str> = zip.file_names().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "codebook.csv",
                "files/SWE/docs/a.pdf",
                "files/SWE/docs/b.pdf",
                "responses.csv"
            ]
        );
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("files/SWE/docs/b.pdf").unwrap(), &mut text)
            .unwrap();
        assert_eq!(text, "content of f2");
    }

    #[test]
    fn a_failure_midway_leaves_no_archive_that_reads_as_whole() {
        let (survey, rows) = survey_and_rows();
        let mut out = Vec::new();
        let read = |id: &str| match id {
            "f1" => Ok(Some(b"first".to_vec())),
            _ => Err(ExportError::Io(std::io::Error::other(
                "the database went away",
            ))),
        };
        let failed = write_zip_with(&survey, &rows, read, &mut out);
        assert!(failed.is_err());
        assert!(!out.is_empty(), "what came before was written");
        assert!(zip::ZipArchive::new(std::io::Cursor::new(out)).is_err());
    }
}
