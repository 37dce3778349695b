//! Limits on what a file or a flag may ask for, checked where it enters, before any allocation
//! or loop it sizes.
//!
//! Two kinds: fixed bounds of the model (the engine's slots are `u32`; a scenario's steps and
//! volatilities have ranges outside which the arithmetic means nothing), and what this machine
//! can hold: a book whose estimated size exceeds the memory available (`MemAvailable` in
//! `/proc/meminfo`) is refused with both figures rather than killed by the kernel part way.

use std::fmt;

/// Most accounts a book may hold. Engine slots are `u32`; this is far below, and far above the
/// 10 M accounts of the largest venues.
pub const MAX_ACCOUNTS: u64 = 100_000_000;

/// A request beyond a limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    /// A count or size above its fixed bound.
    #[error("{what} is {value}; at most {max} is allowed")]
    TooLarge {
        /// What was asked for (e.g. `--accounts`).
        what: String,
        /// The value given.
        value: String,
        /// The bound.
        max: String,
    },
    /// More memory than the machine has available.
    #[error(
        "{what} needs about {}; this machine has {} available (MemAvailable in /proc/meminfo): ask for less",
        Bytes(*.needed), Bytes(*.available)
    )]
    Memory {
        /// What would be allocated, with how the estimate is made (e.g. `a book of 4000000000
        /// accounts at about 1024 bytes each`).
        what: String,
        /// Estimated bytes.
        needed: u64,
        /// `MemAvailable`.
        available: u64,
    },
}

/// A byte count for messages: `12.3 GiB`.
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        match self.0 {
            0..=1023 => write!(f, "{} B", self.0),
            1024..=1_048_575 => write!(f, "{:.1} KiB", b / 1024.0),
            1_048_576..=1_073_741_823 => write!(f, "{:.1} MiB", b / 1_048_576.0),
            _ => write!(f, "{:.1} GiB", b / 1_073_741_824.0),
        }
    }
}

/// Refuses `value > max`.
pub fn at_most(what: &str, value: u64, max: u64) -> Result<(), LimitError> {
    if value > max {
        return Err(LimitError::TooLarge {
            what: what.into(),
            value: value.to_string(),
            max: max.to_string(),
        });
    }
    Ok(())
}

/// Bytes available to a new allocation: `MemAvailable` of `/proc/meminfo` (`None` where there
/// is no such file: then only the fixed bounds apply).
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses an allocation of about `needed` bytes when it would not fit the memory this machine
/// has available now.
pub fn fits_memory(what: &str, needed: u64) -> Result<(), LimitError> {
    fits_memory_of(what, needed, mem_available())
}

/// [`fits_memory`] against a given availability (`None`: unknown, accepted).
pub fn fits_memory_of(what: &str, needed: u64, available: Option<u64>) -> Result<(), LimitError> {
    match available {
        Some(available) if needed > available => {
            Err(LimitError::Memory { what: what.into(), needed, available })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_check_names_both_figures() {
        let info = "MemTotal:       16000000 kB\nMemFree:  1 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(parse_mem_available(info), Some(8_192_000_000));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        let what = "a book of 4000000000 accounts at about 600 bytes each";
        let e = fits_memory_of(what, 4_000_000_000 * 600, Some(8_192_000_000)).unwrap_err().to_string();
        assert!(e.starts_with(what) && e.contains("2235.2 GiB") && e.contains("7.6 GiB available"), "{e}");
        assert!(fits_memory_of("x", 600_000, Some(8_192_000_000)).is_ok());
        assert!(fits_memory_of("x", u64::MAX, None).is_ok());
        assert!(fits_memory_of("x", u64::MAX, Some(1)).is_err());
        // This machine has a /proc/meminfo.
        assert!(mem_available().is_some_and(|b| b > 0));
    }

    #[test]
    fn bounds_name_the_limit() {
        let e = at_most("--accounts", 1_000_000_000_000, MAX_ACCOUNTS).unwrap_err().to_string();
        assert_eq!(e, "--accounts is 1000000000000; at most 100000000 is allowed");
        assert!(at_most("--accounts", MAX_ACCOUNTS, MAX_ACCOUNTS).is_ok());
    }
}
