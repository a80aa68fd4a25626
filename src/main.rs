use std::io::IsTerminal;

use clap::Parser;

use coherence::cli::{run, Cli, CliError};

#[actix_web::main]
async fn main() {
    limit_malloc_arenas();
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
/// server's anonymous memory at 36 MiB with the default and 25 MiB with one arena. Two keep
/// the two cores from waiting on one arena's lock. Called first: actix's system runtime runs on
/// the main thread, and no other thread has started yet (blocking threads start on first use).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets a parameter of the allocator, and no other thread is
    // allocating yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
