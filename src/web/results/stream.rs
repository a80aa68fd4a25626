//! A response body written by a blocking task: the writer hands fixed-size chunks to the HTTP
//! body through a bounded channel, so a slow client makes the writer wait instead of memory
//! grow, and a client that goes away stops the writer at its next chunk.

use std::io::{self, Write};
use std::sync::Arc;

use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::db::Pool;
use crate::results::bundle;
use crate::results::export::{ExportError, ExportRow};
use crate::survey::Survey;

/// Bytes per chunk handed to the body.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the client at most: with `CHUNK`, half a megabyte.
const WAITING: usize = 8;

type Chunk = Result<Bytes, io::Error>;

/// The writing end, for the blocking task; never used from an async task (it blocks).
pub struct ChunkWriter {
    tx: mpsc::Sender<Chunk>,
    buf: Vec<u8>,
}

/// A writer and the body stream it feeds.
pub fn channel() -> (ChunkWriter, impl Stream<Item = Chunk> + 'static) {
    let (tx, mut rx) = mpsc::channel::<Chunk>(WAITING);
    let writer = ChunkWriter {
        tx,
        buf: Vec::with_capacity(CHUNK),
    };
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (writer, body)
}

/// The zip bundle of `rows` as a body, written by a thread that takes a pooled connection for
/// each file's read only, so a slow client holds no connection. The thread holds `turn` (its
/// place among the exports written at once) until it ends.
pub fn zip_body(
    pool: Pool,
    survey: Arc<Survey>,
    rows: Vec<ExportRow>,
    turn: OwnedSemaphorePermit,
) -> impl Stream<Item = Chunk> + 'static {
    let (mut writer, body) = channel();
    // A thread of its own, not one of the worker's few blocking threads (see `startup`): it
    // lives as long as the client takes to download, and those threads serve every page's
    // database work.
    let spawned = std::thread::Builder::new().name("zip-export".into()).spawn(move || {
        let _turn = turn;
        let read = |id: &str| {
            let mut conn = pool.get().map_err(io::Error::other)?;
            bundle::content(&mut conn, id)
        };
        match bundle::write_zip_with(&survey, &rows, read, &mut writer) {
            Ok(_) => {}
            Err(ExportError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                tracing::info!(survey = %survey.id, "zip export: the client left before the end");
            }
            Err(e) => {
                tracing::error!(survey = %survey.id, error = %e, "zip export stopped midway");
                writer.fail(e.to_string());
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "zip export: no thread to write it");
    }
    body
}

impl ChunkWriter {
    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        self.tx.blocking_send(chunk).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the client closed the download")
        })
    }

    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.send(Ok(Bytes::from(full)))
    }

    /// End the body with an error: the client sees a broken transfer, never a short file
    /// that looks complete.
    pub fn fail(mut self, message: String) {
        let _ = self.send(Err(io::Error::other(message)));
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send_buffered()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn chunks_arrive_in_order_and_bounded() {
        let (mut writer, body) = channel();
        let data: Vec<u8> = (0..(CHUNK * 3 + 17)).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let task = tokio::task::spawn_blocking(move || {
            writer.write_all(&data).unwrap();
            writer.flush().unwrap();
        });
        let chunks: Vec<Bytes> = body.map(|c| c.unwrap()).collect().await;
        task.await.unwrap();
        assert!(chunks.iter().all(|c| c.len() <= CHUNK));
        assert_eq!(chunks.concat(), expected);
    }

    #[tokio::test]
    async fn a_closed_body_stops_the_writer() {
        let (mut writer, body) = channel();
        drop(body);
        let failed = tokio::task::spawn_blocking(move || writer.write_all(&[0; CHUNK * 2]))
            .await
            .unwrap();
        assert_eq!(failed.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
