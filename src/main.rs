use std::io::IsTerminal;

use clap::Parser;

use coherence::cli::{run, Cli, CliError};

#[actix_web::main]
async fn main() {
    tune_malloc();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COHERENCE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: a log file or a collector reading a
        // pipe gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        match e {
            // `check` has already printed every diagnostic.
            CliError::CheckFailed => {}
            e => eprintln!("error: {}", coherence::error::chain(&e)),
        }
        std::process::exit(1);
    }
}

/// glibc's malloc gives threads that allocate at the same time arenas of their own, up to eight
/// per core, and each arena keeps what its threads free. Under 64 connections the blocking
/// threads that serve database work spread over many arenas: the load benchmark measured the
/// server's anonymous memory at 36 MiB with the default and 25 MiB with one arena. Past the
/// limit glibc hands a thread's first allocation the next arena in turn that is not locked at
/// that instant, so which threads share one is chance: with two arenas the two actix workers
/// sometimes shared one, and every section page then waited on its lock (the page's server
/// CPU doubled, 146-171 us against 72-81; 6 of 29 load runs over two sessions; see
/// benches/README.md, thirty-second slice). Four arenas make that rarer (1 of 16 load runs so
/// far), not impossible, and made saves and whole responses about 8 % faster, at 37.4-39.1 MiB
/// of peak RSS under whole responses (35.5-37.1 with two); eight were faster still but over
/// issue 14's 40 MiB in two runs of four, and so were sixteen (one per thread, so none shared)
/// and jemalloc (41-46 MiB; thirty-third slice).
///
/// It also returns the free memory at the top of an arena to the system as soon as 128 KiB
/// gather there, and the next allocation then faults fresh zeroed pages in again. SQLite
/// allocates a page cache for every temporary b-tree a statement uses (`IN` over a JSON list,
/// for one) and frees it at the statement's end: perf of whole responses put 7.3 % of the
/// server's CPU in page faults and 1.6 % more in giving the caches back. Keeping up to 8 MiB
/// free per arena (and serving blocks under 4 MiB from the arenas rather than from a mapping
/// of their own each) took both to 0.0 % in the same profile. The peak RSS did not move (38.5
/// and 39.2 MiB before, 39.0 and 39.0 after, alternated): the peak is what the load holds at
/// once, and only what is given back after it changes.
///
/// Called first: actix's system runtime runs on the main thread, and no other thread has
/// started yet (blocking threads start on first use).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: mallopt only sets parameters of the allocator, and no other thread is
    // allocating yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
