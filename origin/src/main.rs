//! The `tessera` command: `serve` (the default), `migrate`, `tenant`, `user`, `keys`, `token`
//! (the commands themselves are in `cli/`).

/// mimalloc instead of glibc's malloc: per-thread free lists without arena locks (see
/// docs/BENCHMARKS.md, 2026-12-05).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

use std::process::ExitCode;

use clap::Parser as _;
use tessera_origin::config::{Config, LogFormat};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    use std::io::IsTerminal as _;
    match config.log_format.resolve(std::io::stderr().is_terminal()) {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Pretty | LogFormat::Auto => builder.init(),
    }
}
