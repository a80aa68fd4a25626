//! How an SQLite connection waits for a lock another connection holds: in short steps at
//! first, rather than SQLite's own busy handler's 1, 2, 5, 10 ... ms.
//!
//! A writer refused the lock sleeps holding the database's write turn (see
//! [`super::transaction`]), so every other write waits too. Under the load benchmark's whole
//! responses on SQLite `perf` counted about 80 such sleeps a second in the pool's writes
//! (`sqlite3BtreeBeginTrans` in `sqlite3InvokeBusyHandler`), with a fifth of the two cores
//! idle. Most holders were writes that did not take the turn (now they all do); what can
//! still hold the lock for a moment is a reader that found the log's index half-written by a
//! commit and takes the write lock to read it whole, or another process. Waiting in short
//! steps costs such a writer microseconds rather than milliseconds. On its own, with the
//! writes outside the turn still there, it measured no faster (the holders held for
//! milliseconds): it is the cheap half of the fix, kept so that a brief holder costs little.
//! Here the first waits are 50 us, doubling every four tries up to 2 ms, for as long as
//! [`super::SQLITE_BUSY_TIMEOUT`] in all.
//!
//! Installed as an automatic extension, which SQLite runs as it opens each connection of the
//! process, since diesel does not hand out the connection's handle. `PRAGMA busy_timeout`
//! would put SQLite's handler back: connections that want it (the checkpoints' shorter
//! patience) still set it.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use libsqlite3_sys as ffi;

use super::SQLITE_BUSY_TIMEOUT;

/// Make every SQLite connection opened from now on wait with [`wait`]. Idempotent.
pub(super) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `on_open` has the entry point's signature, and lives as long as the
        // process.
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(on_open)) };
        if rc != ffi::SQLITE_OK {
            tracing::warn!("SQLite busy handler not installed (code {rc}): SQLite's own waits");
        }
    });
}

/// SQLite's call as it opens a connection.
unsafe extern "C" fn on_open(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: `db` is the connection being opened; the handler takes no argument.
    unsafe { ffi::sqlite3_busy_handler(db, Some(wait), std::ptr::null_mut()) }
}

thread_local! {
    /// When the current wait began: a busy handler runs on the thread of the refused call,
    /// and is told only how many times it was called for this wait.
    static WAITING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// How long to sleep before the try after the `tries`-th refusal: 50 us, doubling every four
/// tries, at most 2 ms.
pub(super) fn pause(tries: u32) -> Duration {
    let micros = 50u64 << (tries / 4).min(6);
    Duration::from_micros(micros.min(2_000))
}

/// How many times a connection of the process was refused a lock and waited: what tells the
/// handler's short steps from SQLite's long ones in a test.
static WAITS: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
pub(super) fn waits_so_far() -> u64 {
    WAITS.load(Ordering::Relaxed)
}

/// The busy handler: non-zero to try again, 0 to give up (SQLITE_BUSY reaches the caller).
extern "C" fn wait(_arg: *mut c_void, tries: c_int) -> c_int {
    WAITS.fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    let since = WAITING_SINCE.with(|w| {
        let since = match (tries, w.get()) {
            (1.., Some(since)) => since,
            _ => now,
        };
        w.set(Some(since));
        since
    });
    if now.duration_since(since) >= SQLITE_BUSY_TIMEOUT {
        WAITING_SINCE.with(|w| w.set(None));
        return 0;
    }
    std::thread::sleep(pause(tries.max(0) as u32));
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pauses_start_short_and_stay_under_two_milliseconds() {
        assert_eq!(pause(0), Duration::from_micros(50));
        assert_eq!(pause(3), Duration::from_micros(50));
        assert_eq!(pause(4), Duration::from_micros(100));
        assert_eq!(pause(12), Duration::from_micros(400));
        assert_eq!(pause(1_000_000), Duration::from_millis(2));
        // The first millisecond holds eight tries, not one.
        let first: Duration = (0..8).map(pause).sum();
        assert!(first <= Duration::from_micros(600), "{first:?}");
    }
}
