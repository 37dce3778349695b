//! Graceful stop on SIGTERM and SIGINT (`systemctl stop`, Ctrl-C).
//!
//! The first signal only raises a flag (the handler does nothing else: `signal-hook`'s flag
//! actions are async-signal-safe stores). The commands look at the flag where they can stop
//! cleanly: the replay loop before each message, the live-feed window, the card's serve loop.
//! A second signal while the first is being handled runs the signal's default action at once
//! (the process dies as an unhandled SIGTERM or SIGINT would: no drain, no report), for a stop
//! that hangs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicUsize = AtomicUsize::new(0);

/// Installs the handlers (call once, early in a command that stops gracefully).
pub fn install() -> std::io::Result<()> {
    for sig in [SIGTERM, SIGINT] {
        // Order matters: the default action is armed by the first signal's flag, so it only
        // runs on the second.
        signal_hook::flag::register_conditional_default(sig, &REQUESTED)?;
        signal_hook::flag::register_usize(sig, &SIGNAL, sig as usize)?;
        signal_hook::flag::register(sig, &REQUESTED)?;
    }
    Ok(())
}

/// The flag a stop raises (for loops that take an `&AtomicBool`).
pub fn flag() -> &'static AtomicBool {
    &REQUESTED
}

/// True once a stop signal has arrived.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// The name of the signal that asked for the stop, if one did.
pub fn signal_name() -> Option<&'static str> {
    match SIGNAL.load(Ordering::Relaxed) as i32 {
        SIGTERM => Some("SIGTERM"),
        SIGINT => Some("SIGINT"),
        _ => None,
    }
}
