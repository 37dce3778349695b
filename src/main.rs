//! The `liqscan` command: one binary for the keeper, the risk analyst and the benchmarker.
//!
//! Each subcommand lives in its own module under `cmd/` with its arguments and its `run`.

use clap::{Parser, Subcommand};

mod cmd;
mod demo_book;
mod logging;
mod replay;
mod shutdown;

/// The engine's indexes are large and read at random, so TLB misses cost as much as cache
/// misses. mimalloc's segments get transparent huge pages (at 10 M accounts 99 % of the resident
/// memory is in 2 MiB pages, against about half with glibc's malloc), which took a 10 M-account
/// multi-asset remove from p99 7.7-7.9 us to 4.3-4.8 us (docs/lab/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Liquidation scanner: finds every account below its liquidation line, fast and exactly.
#[derive(Parser)]
#[command(name = "liqscan", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log line format: text or json (one object a line).
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    /// Log filter, e.g. `info` or `liqscan_host=debug,warn` (default: RUST_LOG, else info).
    #[arg(long, global = true)]
    log_level: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the keeper pipeline on a backend (software, emulated card, PCIe card).
    Run(Box<cmd::run::Args>),
    /// Carry a venue's orders from its NATS JetStream stream to a downstream executor, each once.
    Bridge(cmd::bridge::Args),
    /// Publish a venue's ticks and account deltas to its NATS JetStream input stream.
    Publish(cmd::publish::Args),
    /// Run the emulated card as a process serving a shared-memory link.
    Card(cmd::card::Args),
    /// Measure the card link and the pipeline (figures for docs/lab/performance.md).
    BenchLink(cmd::bench_link::Args),
    /// Run the embedded default scenario end to end on the software engine.
    Demo(cmd::demo::Args),
    /// Scan given account and tick files and report breaches.
    Scan(cmd::scan::Args),
    /// Write a generated lending book and crash ticks (for the whole-job benchmark).
    GenBook(cmd::gen_book::Args),
    /// Simulate a venue scenario (market, oracle, liquidations, insurance fund).
    Sim(cmd::sim::Args),
    /// Run a grid of scenarios and tabulate bad debt.
    Sweep(cmd::sim::SweepArgs),
    /// The journal's crash drill (scripts/soak.sh).
    #[command(hide = true)]
    JournalDrill(cmd::journal::Args),
}

/// Lets a batch command that writes to a closed pipe (`liqscan demo | head`) end as other
/// Unix tools do, killed by SIGPIPE, rather than panic in `println!` (Rust ignores SIGPIPE, so
/// the write fails and the print macros panic). The long-running commands keep ignoring it:
/// a keeper must report a lost reader, not die of it.
fn default_sigpipe() {
    // SAFETY: called first thing in main, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Demo(_) | Command::Scan(_) | Command::GenBook(_) | Command::Sim(_) | Command::Sweep(_)
    ) {
        default_sigpipe();
    }
    let _logs = logging::init(cli.log_format, cli.log_level.as_deref())?;
    match cli.command {
        Command::Run(a) => cmd::run::run(*a),
        Command::Bridge(a) => cmd::bridge::run(a),
        Command::Publish(a) => cmd::publish::run(a),
        Command::Card(a) => cmd::card::run(a),
        Command::BenchLink(a) => cmd::bench_link::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Scan(a) => cmd::scan::run(a),
        Command::GenBook(a) => cmd::gen_book::run(a),
        Command::Sim(a) => cmd::sim::run(a),
        Command::Sweep(a) => cmd::sim::sweep(a),
        Command::JournalDrill(a) => cmd::journal::run(a),
    }
}
