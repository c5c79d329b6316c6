//! The `latchkey` binary.

use clap::Parser;
use latchkey_server::cli::Cli;

/// Runs the command. A failure is printed as one short paragraph, its causes joined by
/// colons, never a stack trace (whatever `RUST_BACKTRACE` says), and exits 1.
fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("latchkey: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = latchkey_server::cli::config::expand(std::env::args_os().collect())?;
    let cli = Cli::parse_from(args);
    latchkey_server::logs::init(cli.log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(latchkey_server::cli::run(cli))
}

/// glibc's allocator gives threads up to eight arenas per core, and latchkey's threads
/// (Tokio's workers, one per SQLite connection) each fill their own with cached tokens and
/// rows: memory that stays resident. One arena per core measured 146 MB instead of 166 MB
/// after verifying 100,000 distinct tokens, at the same verify throughput (docs/performance.md). Set before any thread starts; `MALLOC_ARENA_MAX` in the environment
/// still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
