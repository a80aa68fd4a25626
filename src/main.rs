use std::io::IsTerminal;

use clap::Parser;

use coherence::cli::{run, Cli, CliError};

#[actix_web::main]
async fn main() {
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
