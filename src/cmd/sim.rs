//! `liqscan sim` and `liqscan sweep`: venue scenarios.
//!
//! `liqscan sim SCENARIO.toml` runs one scenario (deterministic from its seed) and writes, into
//! the output directory, `report.json`, `summary.txt` and the plots `price.svg`, `health.svg`,
//! `fund.svg`, each also as PNG; the summary is printed too. `liqscan sweep SWEEP.toml` runs a grid of scenarios
//! and writes `sweep.csv`, `sweep.json` and `bad_debt_heatmap*.svg`, printing the table.

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use liqscan_sim::card::{BackendOptions, open_backend};
use liqscan_sim::perp::run::run_perp as simulate_perp;
use liqscan_sim::perp::scenario::PerpScenario;
use liqscan_sim::sweep::{SweepFile, run_sweep};
use liqscan_sim::{Scenario, Sim, plot};

/// Arguments of `liqscan sim`.
#[derive(clap::Args)]
pub struct Args {
    /// Scenario file (TOML). Files it names are looked up next to it, then in the current directory.
    pub scenario: PathBuf,
    /// Output directory for the report and plots (default: out/<scenario name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the number of borrowers.
    #[arg(long)]
    pub accounts: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Scan engine: `software`, or the emulated card behind the card link (`card-software`,
    /// `card-hdl`: the rust-hdl core, at most 8192 accounts and slow), failing over to software.
    #[arg(long, default_value = "software", value_parser = clap::builder::PossibleValuesParser::new(liqscan_sim::card::BACKENDS))]
    pub backend: String,
}

/// Arguments of `liqscan sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    /// Sweep file (TOML).
    pub sweep: PathBuf,
    /// Output directory (default: out/<sweep file name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

fn default_out(path: &Path) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    PathBuf::from("out").join(stem)
}

fn bar(len: u64, quiet: bool, what: &str) -> ProgressBar {
    let b = if quiet { ProgressBar::hidden() } else { ProgressBar::new(len) };
    b.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    b.set_message(what.to_string());
    b
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
}

/// Writes a plot as `NAME.svg` and, rendered, `NAME.png` beside it.
fn write_plot(dir: &Path, name: &str, svg: &str) -> anyhow::Result<()> {
    write(dir, name, svg)?;
    let png_name = name.strip_suffix(".svg").unwrap_or(name).to_string() + ".png";
    let bytes = plot::png(svg).with_context(|| format!("rendering {png_name}"))?;
    let p = dir.join(&png_name);
    std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
}

/// Runs one scenario.
pub fn run(a: Args) -> anyhow::Result<()> {
    // The lending loader's own error, so a missing file reads the same for both kinds.
    let text = std::fs::read_to_string(&a.scenario)
        .map_err(|source| liqscan_sim::ScenarioError::Read { path: a.scenario.clone(), source })?;
    if PerpScenario::is_perp(&text) {
        if a.backend != "software" {
            anyhow::bail!(
                "{}: a perpetual scenario runs its own ledger, not a scan engine; --backend {} applies to lending scenarios",
                a.scenario.display(),
                a.backend
            );
        }
        return run_perp(a, &text);
    }
    let mut scenario = Scenario::load(&a.scenario)?;
    if let Some(s) = a.seed {
        scenario.seed = s;
    }
    if let Some(n) = a.accounts {
        scenario.population.accounts = n;
        // The override is checked as the file's value is: bounds and memory, before any work.
        scenario.validate(&a.scenario).context("--accounts")?;
    }
    let base = a.scenario.parent().unwrap_or(Path::new(".")).to_path_buf();
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.scenario));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let quote = scenario.quote.clone();
    let progress = bar(100, a.quiet, &scenario.name);
    let started = std::time::Instant::now();
    let mut card = None;
    let sim = Sim::with_engine(scenario, &base, &mut |slots, assets| {
        let (engine, c) = open_backend(&a.backend, slots, assets, &BackendOptions::default())?;
        card = c;
        Ok(engine)
    })
    .with_context(|| format!("simulating {}", a.scenario.display()))?;
    let report = sim
        .run(&mut |k, n| {
            progress.set_length(n);
            progress.set_position(k);
        })
        .with_context(|| format!("simulating {}", a.scenario.display()))?;
    drop(card);
    progress.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    write(&out, "report.json", &serde_json::to_string_pretty(&report)?)?;
    let summary = report.summary();
    write(&out, "summary.txt", &summary)?;
    for (name, svg) in plot::run_plots(&report, &quote) {
        write_plot(&out, &name, &svg)?;
    }
    print!("{summary}");
    println!("wall time  {wall:.2} s");
    println!("written    {}/{{report.json, summary.txt, price, health, fund (.svg, .png)}}", out.display());
    Ok(())
}

/// Runs a perpetual scenario (a file with a `[perp]` section).
fn run_perp(a: Args, text: &str) -> anyhow::Result<()> {
    let mut scenario = PerpScenario::parse(text, &a.scenario)?;
    if let Some(s) = a.seed {
        scenario.seed = s;
    }
    if let Some(n) = a.accounts {
        scenario.perp.population.accounts = n as u64;
        scenario.validate(&a.scenario).context("--accounts")?;
    }
    let base = a.scenario.parent().unwrap_or(Path::new(".")).to_path_buf();
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.scenario));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let progress = bar(100, a.quiet, &scenario.name);
    let started = std::time::Instant::now();
    let report = simulate_perp(&scenario, &base, &mut |k, n| {
        progress.set_length(n);
        progress.set_position(k);
    })
    .with_context(|| format!("simulating {}", a.scenario.display()))?;
    progress.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    write(&out, "report.json", &serde_json::to_string_pretty(&report)?)?;
    let summary = report.summary();
    write(&out, "summary.txt", &summary)?;
    let plots = report.plots();
    for (name, svg) in &plots {
        write_plot(&out, name, svg)?;
    }
    print!("{summary}");
    print!("{}", report.timing_summary());
    println!("wall time  {wall:.2} s, peak resident {}", peak_rss());
    println!(
        "written    {}/{{report.json, summary.txt, {}}}",
        out.display(),
        plots.iter().map(|p| p.0.replace(".svg", "")).collect::<Vec<_>>().join(", ") + " (.svg, .png)"
    );
    if !report.conservation_ok {
        anyhow::bail!("ledger not conserved: {}", report.conservation_error.unwrap_or_default());
    }
    Ok(())
}

/// Peak resident set size of this process (VmHWM), for the console.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l[6..].trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// Runs a sweep.
pub fn sweep(a: SweepArgs) -> anyhow::Result<()> {
    let file = SweepFile::load(&a.sweep)?;
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.sweep));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let total: usize = file.axis.iter().map(|x| x.values.len()).product();
    let progress = bar(total as u64, a.quiet, "sweep");
    let result = run_sweep(&file, &a.sweep, &mut |done, _, point| {
        progress.set_position(done as u64);
        progress.set_message(point.to_string());
    })?;
    progress.finish_and_clear();
    write(&out, "sweep.csv", &result.csv())?;
    write(&out, "sweep.json", &serde_json::to_string_pretty(&result)?)?;
    let maps = result.heat_maps();
    for (name, svg) in &maps {
        write_plot(&out, name, svg)?;
    }
    print!("{}", result.table());
    println!(
        "written    {}/sweep.csv, sweep.json, {}",
        out.display(),
        maps.iter().map(|m| m.0.as_str()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
