//! The Verilated card model: the whole card's generated Verilog (`generate_card`, the file
//! synthesis reads) compiled by Verilator into a shared library with a small C ABI
//! (`vcard.cpp`: new, free, one call per clock cycle), loaded with `libloading`. Verilator's top
//! is `vcard_top.v`, the card with its hard reset driven from a flop (see that file).
//!
//! ```text
//!   generate_card(0) ──share_replicas──sha256(Verilog, wrappers, flags, verilator --version)──> key
//!   <cache>/verilated/<key>/libvcard.so   (built once: verilator --cc --build, then g++ -shared)
//! ```
//!
//! Verilator is given the Verilog with its replicated blocks (the lanes, their memories) merged
//! into one module each and kept out of line, so their code is emitted once ([`super::share`]:
//! names and Verilator comments only, the logic unchanged).
//!
//! The cache is `LIQSCAN_VERILATED_DIR`, else `$CARGO_TARGET_DIR/verilated`, else the
//! `verilated/` folder of the cargo target directory the running binary sits in (the folder
//! with `CACHEDIR.TAG`), else the system temp folder. A build goes to a private folder renamed
//! into place when done, so concurrent tests never load a half-built library.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use sha2::{Digest, Sha256};

/// Why the Verilated card is not available.
#[derive(Debug, thiserror::Error)]
pub enum VerilatedError {
    /// No Verilator on this machine.
    #[error("verilator not found: run scripts/setup-tools.sh (Debian packages verilator, g++, make)")]
    NotFound,
    /// Verilator or the C++ compiler failed.
    #[error("building the Verilated card in {dir} failed at {step}:\n{log}")]
    Build {
        /// Work folder (kept for inspection).
        dir: PathBuf,
        /// The command that failed.
        step: &'static str,
        /// The end of its output.
        log: String,
    },
    /// Files of the build could not be written or moved.
    #[error("Verilated card build folder {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The built library could not be loaded or lacks a symbol.
    #[error("loading the Verilated card {0}: {1}")]
    Load(PathBuf, libloading::Error),
    /// The library was built against another port layout.
    #[error("{0}: C ABI version {1}, expected {ABI_VERSION}")]
    Abi(PathBuf, u32),
}

/// The C wrapper, compiled with the model.
const WRAPPER: &str = include_str!("vcard.cpp");
const WRAPPER_H: &str = include_str!("vcard.h");
/// Verilator's top module: the card, its reset from a flop.
const WRAPPER_V: &str = include_str!("vcard_top.v");
/// The wrapper's `vcard_abi_version()`: bump with any change of [`VcardIn`] / [`VcardOut`].
pub const ABI_VERSION: u32 = 2;
/// Verilator options (part of the cache key). The generated Verilog is linted clean elsewhere
/// (`hdl/tests/front_verilog.rs`), so its width warnings are not repeated here.
const VERILATOR_FLAGS: &[&str] = &[
    "--cc",
    "-O3",
    "--x-assign",
    "fast",
    "--x-initial",
    "fast",
    "--noassert",
    "-Wno-fatal",
    "-Wno-lint",
    "-Wno-style",
    "--top-module",
    "vcard_top",
    "--prefix",
    "Vtop",
];
/// Flags for the C++ of the model (Verilator's `-CFLAGS`), also part of the cache key.
/// `-fno-semantic-interposition`: the model's calls between its own functions (the shared
/// lanes, the memories) go direct instead of through the shared library's PLT.
const MODEL_CFLAGS: &str = "-fPIC -O2 -fno-semantic-interposition";
/// Verilator's make compiles the model's per-cycle ("fast") code with its `OPT_FAST`, placed
/// after `MODEL_CFLAGS`; its default is -Os. On a 2.6 GHz AMD EPYC VM, -O2 clocks the same
/// Verilog about 1.7 times faster than -Os, -O3 no faster than -O2 (docs/lab/performance.md,
/// "The Verilated card at -O2"); on the earlier Intel machines -O2 measured the same as -Os.
/// Portable: no `-march`, so the cached model runs on any x86-64. Part of the cache key.
const MODEL_MAKEFLAGS: &str = "OPT_FAST=-O2";

/// The card's inputs for one cycle (layout shared with `vcard.cpp`). Each field is the card
/// port of that name (`hdl/src/front/card.rs`), `rd_` and `wr_` standing for `axi_rd$` and
/// `axi_wr$`; one-bit ports are 0 or 1. Except `reset`: the card's hard reset in the *next*
/// cycle (`vcard_top.v` drives it from a flop, set when the model is made).
#[allow(missing_docs)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VcardIn {
    pub rd_rdata: u64,
    pub bar_awaddr: u32,
    pub bar_wdata: u32,
    pub bar_araddr: u32,
    pub reset: u8,
    pub bar_awvalid: u8,
    pub bar_wvalid: u8,
    pub bar_wstrb: u8,
    pub bar_bready: u8,
    pub bar_arvalid: u8,
    pub bar_rready: u8,
    pub rd_arready: u8,
    pub rd_rvalid: u8,
    pub rd_rresp: u8,
    pub rd_rlast: u8,
    pub wr_awready: u8,
    pub wr_wready: u8,
    pub wr_bvalid: u8,
    pub wr_bresp: u8,
}

/// The card's outputs, settled just before a rising edge (layout shared with `vcard.cpp`);
/// named as [`VcardIn`]'s fields.
#[allow(missing_docs)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VcardOut {
    pub rd_araddr: u64,
    pub wr_awaddr: u64,
    pub wr_wdata: u64,
    pub bar_rdata: u32,
    pub cmd_consumer: u32,
    pub evt_producer: u32,
    pub bar_awready: u8,
    pub bar_wready: u8,
    pub bar_bvalid: u8,
    pub bar_bresp: u8,
    pub bar_arready: u8,
    pub bar_rvalid: u8,
    pub bar_rresp: u8,
    pub rd_arvalid: u8,
    pub rd_arlen: u8,
    pub rd_rready: u8,
    pub wr_awvalid: u8,
    pub wr_awlen: u8,
    pub wr_wvalid: u8,
    pub wr_wstrb: u8,
    pub wr_wlast: u8,
    pub wr_bready: u8,
    pub dma_error: u8,
}

type CycleFn = unsafe extern "C" fn(*mut std::ffi::c_void, *const VcardIn, *mut VcardOut);

/// One instance of the Verilated card.
pub struct Model {
    ptr: *mut std::ffi::c_void,
    cycle: CycleFn,
    free: unsafe extern "C" fn(*mut std::ffi::c_void),
    // Kept loaded for as long as `ptr` and the function pointers live.
    _lib: libloading::Library,
}

// SAFETY: the model is plain C++ state with no thread affinity (Verilator's single-threaded
// model; its context is owned by the instance); `Model` is not `Sync`, so only one thread at a
// time calls into it.
unsafe impl Send for Model {}

impl Model {
    /// Loads the library at `path` and makes one card (its clock low, not yet reset).
    pub fn load(path: &Path) -> Result<Model, VerilatedError> {
        let err = |e| VerilatedError::Load(path.to_path_buf(), e);
        // SAFETY: the library is one this module built from `vcard.cpp`; its initialisers are
        // Verilator's and the wrapper's static data only.
        let lib = unsafe { libloading::Library::new(path) }.map_err(err)?;
        // SAFETY: the symbol types are those `vcard.cpp` declares (`extern "C"`), checked by
        // the ABI version below before any other call.
        unsafe {
            let version = lib.get::<unsafe extern "C" fn() -> u32>(b"vcard_abi_version").map_err(err)?();
            if version != ABI_VERSION {
                return Err(VerilatedError::Abi(path.to_path_buf(), version));
            }
            let new =
                *lib.get::<unsafe extern "C" fn() -> *mut std::ffi::c_void>(b"vcard_new").map_err(err)?;
            let cycle = *lib.get::<CycleFn>(b"vcard_cycle").map_err(err)?;
            let free = *lib.get::<unsafe extern "C" fn(*mut std::ffi::c_void)>(b"vcard_free").map_err(err)?;
            Ok(Model { ptr: new(), cycle, free, _lib: lib })
        }
    }

    /// One clock cycle: applies `inp`, returns the outputs as they stood just before the
    /// rising edge, then clocks the edge.
    #[inline]
    pub fn cycle(&mut self, inp: &VcardIn, out: &mut VcardOut) {
        // SAFETY: `ptr` came from `vcard_new` of the library held in `_lib` and is freed only
        // in `drop`; `inp` and `out` are valid for the call and laid out as the C structs.
        unsafe { (self.cycle)(self.ptr, inp, out) }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: `ptr` is live (made by `vcard_new`, freed only here) and the library is
        // still loaded (`_lib` drops after this).
        unsafe { (self.free)(self.ptr) }
    }
}

/// Whether Verilator is installed (and runs).
pub fn verilator_version() -> Option<String> {
    let out = Command::new("verilator").arg("--version").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The whole card's Verilog (front end and core, top `top`), as `gen_verilog --card` writes it.
/// Generated once per process (seconds of rust-hdl work, the cache key of every model built).
pub fn card_verilog() -> &'static str {
    static VERILOG: OnceLock<String> = OnceLock::new();
    VERILOG.get_or_init(|| {
        // rust-hdl builds the card's blocks on the stack before boxing them: more than a
        // default thread's stack.
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(|| liqscan_hdl::core::verilog::generate_card(0))
            .expect("spawn the Verilog generator thread")
            .join()
            .expect("the Verilog generator panicked")
    })
}

/// Where built models are kept (see the module docs).
pub fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("LIQSCAN_VERILATED_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d).join("verilated");
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(t) = exe.ancestors().find(|d| d.join("CACHEDIR.TAG").is_file())
    {
        return t.join("verilated");
    }
    std::env::temp_dir().join("liqscan-verilated")
}

/// A built model on disk.
#[derive(Clone, Debug)]
pub struct Built {
    /// The shared library.
    pub library: PathBuf,
    /// Whether it was built now (false: found in the cache).
    pub fresh: bool,
    /// Seconds the build took (0 when cached).
    pub build_seconds: f64,
}

/// Builds the Verilated card from `verilog` into the cache, or finds it there.
pub fn build(verilog: &str) -> Result<Built, VerilatedError> {
    let version = verilator_version().ok_or(VerilatedError::NotFound)?;
    let verilog = &super::share::share_replicas(verilog);
    let mut h = Sha256::new();
    let flags = VERILATOR_FLAGS.join(" ");
    for part in [verilog, WRAPPER, WRAPPER_H, WRAPPER_V, &flags, MODEL_CFLAGS, MODEL_MAKEFLAGS, &version] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let key = hex::encode(&h.finalize()[..12]);
    let root = cache_root();
    let dir = root.join(&key);
    let library = dir.join("libvcard.so");
    if library.is_file() {
        return Ok(Built { library, fresh: false, build_seconds: 0.0 });
    }
    // One build at a time in this process (tests open cards on several threads): the others
    // wait and find it in the cache. Other processes build in folders of their own.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    if library.is_file() {
        return Ok(Built { library, fresh: false, build_seconds: 0.0 });
    }
    let t0 = Instant::now();
    let work = root.join(format!("{key}.build-{}", std::process::id()));
    let io = |e| VerilatedError::Io(work.clone(), e);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io)?;
    std::fs::write(work.join("card.v"), verilog).map_err(io)?;
    std::fs::write(work.join("vcard.cpp"), WRAPPER).map_err(io)?;
    std::fs::write(work.join("vcard.h"), WRAPPER_H).map_err(io)?;
    std::fs::write(work.join("vcard_top.v"), WRAPPER_V).map_err(io)?;
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get()).to_string();
    // The model's per-cycle code is built with `MODEL_MAKEFLAGS`' OPT_FAST (see there).
    let mut vl = Command::new("verilator");
    vl.current_dir(&work).args(VERILATOR_FLAGS).args([
        "--Mdir",
        "obj",
        "-CFLAGS",
        MODEL_CFLAGS,
        "-MAKEFLAGS",
        MODEL_MAKEFLAGS,
        "--build",
        "-j",
        &jobs,
        "card.v",
        "vcard_top.v",
    ]);
    run(&mut vl, &work, "verilator --build")?;
    let include = Path::new("/usr/share/verilator/include");
    let include = std::env::var_os("VERILATOR_ROOT")
        .map(|r| PathBuf::from(r).join("include"))
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| include.to_path_buf());
    let mut cxx = Command::new(std::env::var("CXX").unwrap_or_else(|_| "g++".into()));
    cxx.current_dir(&work)
        .args(["-shared", "-fPIC", "-O2", "-faligned-new", "-Iobj"])
        .arg(format!("-I{}", include.display()))
        .arg(format!("-I{}", include.join("vltstd").display()))
        .arg("vcard.cpp")
        .arg(include.join("verilated.cpp"))
        .arg(include.join("verilated_threads.cpp"))
        .args(["-Wl,--whole-archive", "obj/Vtop__ALL.a", "-Wl,--no-whole-archive", "-pthread"])
        .args(["-o", "libvcard.so"]);
    run(&mut cxx, &work, "g++ -shared")?;
    let _ = std::fs::remove_dir_all(work.join("obj"));
    // Another process may have finished the same key first: theirs is as good as ours.
    if std::fs::rename(&work, &dir).is_err() && !library.is_file() {
        return Err(VerilatedError::Io(dir, std::io::Error::other("could not move the build into place")));
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(Built { library, fresh: true, build_seconds: t0.elapsed().as_secs_f64() })
}

fn run(cmd: &mut Command, dir: &Path, step: &'static str) -> Result<(), VerilatedError> {
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => VerilatedError::NotFound,
        _ => VerilatedError::Io(dir.to_path_buf(), e),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    let cut = (log.len().saturating_sub(4000)..log.len()).find(|&i| log.is_char_boundary(i)).unwrap_or(0);
    let log = log[cut..].to_string();
    Err(VerilatedError::Build { dir: dir.to_path_buf(), step, log })
}
