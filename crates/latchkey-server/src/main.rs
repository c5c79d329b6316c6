//! The `latchkey` binary.

use std::io::IsTerminal;

use clap::Parser;
use latchkey_server::cli::{Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    let args = latchkey_server::config::expand(std::env::args_os().collect())?;
    let cli = Cli::parse_from(args);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(latchkey_server::cli::run(cli))
}

/// glibc's allocator gives threads up to eight arenas per core, and latchkey's threads
/// (Tokio's workers, one per SQLite connection) each fill their own with cached tokens and
/// rows: memory that stays resident. One arena per core measured 146 MB instead of 166 MB
/// after verifying 100,000 distinct tokens, at the same verify throughput (README,
/// "Performance"). Set before any thread starts; `MALLOC_ARENA_MAX` in the environment
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
