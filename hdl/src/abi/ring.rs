//! Ring entry formats: commands host -> card, events card -> host.
//!
//! Every entry is [`RING_ENTRY_BYTES`] = 64 bytes (one cache line, one posted write burst):
//! sixteen little-endian `u32` words. Word 0 holds the kind (bits 7:0) and flags (bits 15:8);
//! word 1 the entry's sequence number, so that nothing is lost unseen: the card checks command
//! sequence numbers are consecutive (`SEQ_GAP` error otherwise), the host checks event sequence
//! numbers the same way. Event entries also carry a phase bit (word 0 bit 31) that flips each
//! time the card wraps the event ring, so the host finds new events by reading its own memory.
//!
//! ```text
//!  command ring (card BAR window)          event ring (host memory)
//!  host --posted writes--> [cmd][cmd]...   card --posted writes--> [evt][evt]...
//!                                          host polls word 0 bit 31 (phase)
//! ```
//!
//! Payload layouts (word index: meaning) are in `docs/REGISTERS.md` and on each variant.
//! [`Command::encode`]/[`Command::decode`] and [`EventEntry::encode`]/[`EventEntry::decode`]
//! are exact inverses on valid entries; decoding rejects unknown kinds, non-zero reserved
//! words and out-of-range fields with a [`RingError`].

use crate::abi::widths::{COEFF_MIN, Coeff, PriceEntry, QuotedPrice};

/// Bytes per ring entry.
pub const RING_ENTRY_BYTES: usize = 64;
/// `u32` words per ring entry.
pub const RING_ENTRY_WORDS: usize = RING_ENTRY_BYTES / 4;
/// Terms carried by one [`Command::AccountTerms`] entry.
pub const TERMS_PER_ENTRY: usize = 8;
/// Bitmap words carried by one [`Event::Bitmap`] entry (for each of breach and at-risk).
pub const BITMAP_WORDS_PER_ENTRY: usize = 6;
/// Changed words carried by one [`Event::ChangedWords`] entry.
pub const CHANGED_PER_ENTRY: usize = 4;
/// Phase bit in word 0 of an event entry.
pub const PHASE_BIT: u32 = 1 << 31;

/// Command kinds (word 0 bits 7:0).
pub mod cmd_kind {
    /// [`super::Command::Tick`].
    pub const TICK: u8 = 0x01;
    /// [`super::Command::BatchTick`].
    pub const BATCH_TICK: u8 = 0x02;
    /// [`super::Command::AccountTerms`].
    pub const ACCOUNT_TERMS: u8 = 0x03;
    /// [`super::Command::Params`].
    pub const PARAMS: u8 = 0x05;
    /// [`super::Command::Fence`].
    pub const FENCE: u8 = 0x06;
    /// [`super::Command::ScanFull`].
    pub const SCAN_FULL: u8 = 0x07;
    /// [`super::Command::SetGroup`]. (0x04, the unpacked layout's account removal, is retired.)
    pub const SET_GROUP: u8 = 0x08;
}

/// Event kinds (word 0 bits 7:0).
pub mod evt_kind {
    /// [`super::Event::Bitmap`].
    pub const BITMAP: u8 = 0x81;
    /// [`super::Event::ChangedWords`].
    pub const CHANGED_WORDS: u8 = 0x82;
    /// [`super::Event::ScanDone`].
    pub const SCAN_DONE: u8 = 0x83;
    /// [`super::Event::Error`].
    pub const ERROR: u8 = 0x84;
    /// [`super::Event::Stats`].
    pub const STATS: u8 = 0x85;
    /// [`super::Event::FenceDone`].
    pub const FENCE_DONE: u8 = 0x86;
}

/// A host-to-card command. One entry each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// One asset's prices moved: write them, then scan incrementally (only the accounts exposed
    /// to `asset`). Words: 2 asset, 3 spot.asset, 4 spot.liability, 5 stressed.asset,
    /// 6 stressed.liability.
    Tick {
        /// Asset index.
        asset: u16,
        /// New spot and stressed prices.
        price: PriceEntry,
    },
    /// One price of a batch tick: write it; if `last` (flags bit 0), then scan every account.
    /// Same words as [`Command::Tick`].
    BatchTick {
        /// Asset index.
        asset: u16,
        /// New spot and stressed prices.
        price: PriceEntry,
        /// The batch's last price: start the full scan.
        last: bool,
    },
    /// Write `count` consecutive term words of an account's lane from `word`: the packed
    /// layout, placed by the host (`crate::layout::PackedLayout`, which turns an upsert into
    /// these and [`Command::SetGroup`]s). Words: 2 account, 3 word | count << 16,
    /// 4..=11 coefficients (two's complement), 12..=15 asset pairs (`a[2k] | a[2k+1] << 16`).
    AccountTerms {
        /// Account index.
        account: u32,
        /// First term word written (in the account's lane).
        word: u16,
        /// Words written, at most [`TERMS_PER_ENTRY`].
        count: u8,
        /// The terms; entries at `count` and beyond are zero.
        terms: [Coeff; TERMS_PER_ENTRY],
    },
    /// Point a group (accounts `group * lanes ..`) at its term words: scans walk words
    /// `first .. first + len` of every lane for it; `len` 0 empties it. Words: 2 group,
    /// 3 first | len << 16.
    SetGroup {
        /// Group index.
        group: u32,
        /// First term word.
        first: u16,
        /// Words per account (at most 16).
        len: u8,
    },
    /// Scan parameters. Words: 2 active accounts, 3 term slots scanned per account.
    Params {
        /// Accounts `0..active_accounts` are scanned.
        active_accounts: u32,
        /// Slots `0..term_slots` of each account are scanned (1..=16).
        term_slots: u32,
    },
    /// Answer with [`Event::FenceDone`] once every earlier command is done. Words: 2 token.
    Fence {
        /// Echoed back.
        token: u32,
    },
    /// Scan every active account (resync).
    ScanFull,
}

/// A card-to-host event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Contiguous bitmap words of a full scan. Bit `i` of word `w` is account `32 * w + i`.
    /// Words: 2 cmd_seq, 3 base_word | count << 24, 4..=9 breach, 10..=15 at-risk.
    Bitmap {
        /// Sequence number of the command that started the scan.
        cmd_seq: u32,
        /// Index of the first bitmap word (below 2^24).
        base_word: u32,
        /// Words carried, at most [`BITMAP_WORDS_PER_ENTRY`].
        count: u8,
        /// Breach bits (health < 0).
        breach: [u32; BITMAP_WORDS_PER_ENTRY],
        /// At-risk bits (stressed health < 0).
        at_risk: [u32; BITMAP_WORDS_PER_ENTRY],
    },
    /// Bitmap words rescanned by an incremental scan. Words: 2 cmd_seq, 3 count,
    /// then per entry k: 4+3k word index, 5+3k breach, 6+3k at-risk.
    ChangedWords {
        /// Sequence number of the tick.
        cmd_seq: u32,
        /// Entries carried, at most [`CHANGED_PER_ENTRY`].
        count: u8,
        /// (word index, breach word, at-risk word).
        words: [(u32, u32, u32); CHANGED_PER_ENTRY],
    },
    /// A scan finished; every bitmap event of it came before. Flags bit 0: incremental.
    /// Words: 2 cmd_seq, 3 asset (incremental) or 0, 4 groups scanned, 5 cycles,
    /// 6 breached accounts, 7 at-risk accounts.
    ScanDone {
        /// Sequence number of the command that started the scan.
        cmd_seq: u32,
        /// Incremental (one asset) or full.
        incremental: bool,
        /// The moved asset of an incremental scan.
        asset: u16,
        /// Groups of lanes scanned.
        groups: u32,
        /// Core cycles from command to last bitmap word.
        cycles: u32,
        /// Breached accounts among those scanned.
        breached: u32,
        /// At-risk accounts among those scanned.
        at_risk: u32,
    },
    /// A command was refused. Words: 2 cmd_seq, 3 error bits ([`crate::abi::regs::error_bit`]),
    /// 4 detail (the offending value).
    Error {
        /// Sequence number of the refused command.
        cmd_seq: u32,
        /// Error bits.
        errors: u32,
        /// The offending value.
        detail: u32,
    },
    /// Statistics snapshot. Words: 2 cmd_seq, 3 commands, 4 scans, 5 bitmap words,
    /// 6 busy cycles, 7 sticky errors.
    Stats {
        /// Sequence number of the last command seen.
        cmd_seq: u32,
        /// Commands accepted (wraps).
        commands: u32,
        /// Scans completed (wraps).
        scans: u32,
        /// Bitmap group words sent (wraps).
        words: u32,
        /// Busy cycles (wraps).
        busy_cycles: u32,
        /// Sticky error bits.
        errors: u32,
    },
    /// Every command up to the fence is done. Words: 2 cmd_seq, 3 token.
    FenceDone {
        /// Sequence number of the fence.
        cmd_seq: u32,
        /// The fence's token.
        token: u32,
    },
}

/// An event as it sits in the event ring: phase bit, sequence number, event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventEntry {
    /// Phase bit: flips each time the card wraps the ring.
    pub phase: bool,
    /// Event sequence number (consecutive).
    pub seq: u32,
    /// The event.
    pub event: Event,
}

/// Why a ring entry does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// Word 0 holds a kind this version does not know.
    #[error("unknown ring entry kind 0x{0:02x}")]
    UnknownKind(u8),
    /// A word that must be zero is not.
    #[error("ring entry kind 0x{kind:02x}: reserved word {word} is 0x{value:08x}, must be 0")]
    Reserved {
        /// Entry kind.
        kind: u8,
        /// Word index.
        word: usize,
        /// Its value.
        value: u32,
    },
    /// A field is out of its range.
    #[error("ring entry kind 0x{kind:02x}: field {field} = {value} is out of range")]
    Range {
        /// Entry kind.
        kind: u8,
        /// Field name.
        field: &'static str,
        /// Its value.
        value: u64,
    },
}

/// Entry bytes.
pub type EntryBytes = [u8; RING_ENTRY_BYTES];

fn to_bytes(w: &[u32; RING_ENTRY_WORDS]) -> EntryBytes {
    let mut b = [0u8; RING_ENTRY_BYTES];
    for (i, x) in w.iter().enumerate() {
        b[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
    }
    b
}

fn to_words(b: &EntryBytes) -> [u32; RING_ENTRY_WORDS] {
    let mut w = [0u32; RING_ENTRY_WORDS];
    for (i, x) in w.iter_mut().enumerate() {
        *x = u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    }
    w
}

fn put_price(w: &mut [u32; RING_ENTRY_WORDS], p: &PriceEntry) {
    w[3] = p.spot.asset;
    w[4] = p.spot.liability;
    w[5] = p.stressed.asset;
    w[6] = p.stressed.liability;
}

fn get_price(w: &[u32; RING_ENTRY_WORDS]) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: w[3], liability: w[4] },
        stressed: QuotedPrice { asset: w[5], liability: w[6] },
    }
}

/// Checks words `from..` are zero.
fn reserved_from(kind: u8, w: &[u32; RING_ENTRY_WORDS], from: usize) -> Result<(), RingError> {
    match (from..RING_ENTRY_WORDS).find(|&i| w[i] != 0) {
        Some(word) => Err(RingError::Reserved { kind, word, value: w[word] }),
        None => Ok(()),
    }
}

fn range(kind: u8, field: &'static str, value: u64, ok: bool) -> Result<(), RingError> {
    if ok { Ok(()) } else { Err(RingError::Range { kind, field, value }) }
}

fn asset16(kind: u8, v: u32) -> Result<u16, RingError> {
    range(kind, "asset", v as u64, v <= u16::MAX as u32)?;
    Ok(v as u16)
}

impl Command {
    /// The entry's kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            Command::Tick { .. } => cmd_kind::TICK,
            Command::BatchTick { .. } => cmd_kind::BATCH_TICK,
            Command::AccountTerms { .. } => cmd_kind::ACCOUNT_TERMS,
            Command::SetGroup { .. } => cmd_kind::SET_GROUP,
            Command::Params { .. } => cmd_kind::PARAMS,
            Command::Fence { .. } => cmd_kind::FENCE,
            Command::ScanFull => cmd_kind::SCAN_FULL,
        }
    }

    /// Encodes the command as ring entry words with sequence number `seq`.
    pub fn encode_words(&self, seq: u32) -> [u32; RING_ENTRY_WORDS] {
        let mut w = [0u32; RING_ENTRY_WORDS];
        let mut flags = 0u32;
        w[1] = seq;
        match *self {
            Command::Tick { asset, price } => {
                w[2] = asset as u32;
                put_price(&mut w, &price);
            }
            Command::BatchTick { asset, price, last } => {
                w[2] = asset as u32;
                put_price(&mut w, &price);
                flags = last as u32;
            }
            Command::AccountTerms { account, word, count, terms } => {
                w[2] = account;
                w[3] = word as u32 | (count as u32) << 16;
                for (k, t) in terms.iter().enumerate() {
                    w[4 + k] = t.coeff as u32;
                    w[12 + k / 2] |= (t.asset as u32) << (16 * (k % 2));
                }
            }
            Command::SetGroup { group, first, len } => {
                w[2] = group;
                w[3] = first as u32 | (len as u32) << 16;
            }
            Command::Params { active_accounts, term_slots } => {
                w[2] = active_accounts;
                w[3] = term_slots;
            }
            Command::Fence { token } => w[2] = token,
            Command::ScanFull => {}
        }
        w[0] = self.kind() as u32 | flags << 8;
        w
    }

    /// Encodes the command as a 64-byte little-endian ring entry with sequence number `seq`.
    pub fn encode(&self, seq: u32) -> EntryBytes {
        to_bytes(&self.encode_words(seq))
    }

    /// Decodes ring entry words into (sequence number, command).
    pub fn decode_words(w: &[u32; RING_ENTRY_WORDS]) -> Result<(u32, Command), RingError> {
        let kind = (w[0] & 0xFF) as u8;
        let flags = (w[0] >> 8) & 0xFF;
        if w[0] >> 16 != 0 {
            return Err(RingError::Reserved { kind, word: 0, value: w[0] });
        }
        let flag0 = |allowed: bool| -> Result<bool, RingError> {
            range(kind, "flags", flags as u64, flags == 0 || (allowed && flags == 1))?;
            Ok(flags == 1)
        };
        let cmd = match kind {
            cmd_kind::TICK | cmd_kind::BATCH_TICK => {
                let last = flag0(kind == cmd_kind::BATCH_TICK)?;
                reserved_from(kind, w, 7)?;
                let asset = asset16(kind, w[2])?;
                let price = get_price(w);
                if kind == cmd_kind::TICK {
                    Command::Tick { asset, price }
                } else {
                    Command::BatchTick { asset, price, last }
                }
            }
            cmd_kind::ACCOUNT_TERMS => {
                flag0(false)?;
                range(kind, "w3", w[3] as u64, w[3] >> 24 == 0)?;
                let word = w[3] as u16;
                let count = (w[3] >> 16) as u8;
                range(kind, "count", count as u64, count as usize <= TERMS_PER_ENTRY)?;
                let mut terms = [Coeff::default(); TERMS_PER_ENTRY];
                for (k, t) in terms.iter_mut().enumerate() {
                    let coeff = w[4 + k] as i32;
                    let asset = (w[12 + k / 2] >> (16 * (k % 2))) as u16;
                    if k >= count as usize && (coeff != 0 || asset != 0) {
                        return Err(RingError::Reserved { kind, word: 4 + k, value: w[4 + k] });
                    }
                    range(kind, "coeff", coeff as i64 as u64, coeff >= COEFF_MIN)?;
                    *t = Coeff { asset, coeff };
                }
                Command::AccountTerms { account: w[2], word, count, terms }
            }
            cmd_kind::SET_GROUP => {
                flag0(false)?;
                range(kind, "w3", w[3] as u64, w[3] >> 24 == 0)?;
                reserved_from(kind, w, 4)?;
                Command::SetGroup { group: w[2], first: w[3] as u16, len: (w[3] >> 16) as u8 }
            }
            cmd_kind::PARAMS => {
                flag0(false)?;
                reserved_from(kind, w, 4)?;
                Command::Params { active_accounts: w[2], term_slots: w[3] }
            }
            cmd_kind::FENCE => {
                flag0(false)?;
                reserved_from(kind, w, 3)?;
                Command::Fence { token: w[2] }
            }
            cmd_kind::SCAN_FULL => {
                flag0(false)?;
                reserved_from(kind, w, 2)?;
                Command::ScanFull
            }
            _ => return Err(RingError::UnknownKind(kind)),
        };
        Ok((w[1], cmd))
    }

    /// Decodes a 64-byte ring entry into (sequence number, command).
    pub fn decode(b: &EntryBytes) -> Result<(u32, Command), RingError> {
        Self::decode_words(&to_words(b))
    }
}

impl Event {
    /// The entry's kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            Event::Bitmap { .. } => evt_kind::BITMAP,
            Event::ChangedWords { .. } => evt_kind::CHANGED_WORDS,
            Event::ScanDone { .. } => evt_kind::SCAN_DONE,
            Event::Error { .. } => evt_kind::ERROR,
            Event::Stats { .. } => evt_kind::STATS,
            Event::FenceDone { .. } => evt_kind::FENCE_DONE,
        }
    }
}

impl EventEntry {
    /// Encodes the entry as ring entry words.
    pub fn encode_words(&self) -> [u32; RING_ENTRY_WORDS] {
        let mut w = [0u32; RING_ENTRY_WORDS];
        let mut flags = 0u32;
        w[1] = self.seq;
        match self.event {
            Event::Bitmap { cmd_seq, base_word, count, breach, at_risk } => {
                w[2] = cmd_seq;
                w[3] = base_word | (count as u32) << 24;
                w[4..10].copy_from_slice(&breach);
                w[10..16].copy_from_slice(&at_risk);
            }
            Event::ChangedWords { cmd_seq, count, words } => {
                w[2] = cmd_seq;
                w[3] = count as u32;
                for (k, (i, b, r)) in words.iter().enumerate() {
                    w[4 + 3 * k] = *i;
                    w[5 + 3 * k] = *b;
                    w[6 + 3 * k] = *r;
                }
            }
            Event::ScanDone { cmd_seq, incremental, asset, groups, cycles, breached, at_risk } => {
                flags = incremental as u32;
                w[2] = cmd_seq;
                w[3] = asset as u32;
                w[4] = groups;
                w[5] = cycles;
                w[6] = breached;
                w[7] = at_risk;
            }
            Event::Error { cmd_seq, errors, detail } => {
                w[2] = cmd_seq;
                w[3] = errors;
                w[4] = detail;
            }
            Event::Stats { cmd_seq, commands, scans, words, busy_cycles, errors } => {
                w[2] = cmd_seq;
                w[3] = commands;
                w[4] = scans;
                w[5] = words;
                w[6] = busy_cycles;
                w[7] = errors;
            }
            Event::FenceDone { cmd_seq, token } => {
                w[2] = cmd_seq;
                w[3] = token;
            }
        }
        w[0] = self.event.kind() as u32 | flags << 8 | if self.phase { PHASE_BIT } else { 0 };
        w
    }

    /// Encodes the entry as 64 little-endian bytes.
    pub fn encode(&self) -> EntryBytes {
        to_bytes(&self.encode_words())
    }

    /// Reads only the phase bit of an entry in memory: the host's poll.
    pub fn phase_of(b: &EntryBytes) -> bool {
        b[3] & 0x80 != 0
    }

    /// Decodes ring entry words.
    pub fn decode_words(w: &[u32; RING_ENTRY_WORDS]) -> Result<EventEntry, RingError> {
        let kind = (w[0] & 0xFF) as u8;
        let flags = (w[0] >> 8) & 0xFF;
        let phase = w[0] & PHASE_BIT != 0;
        if (w[0] >> 16) & 0x7FFF != 0 {
            return Err(RingError::Reserved { kind, word: 0, value: w[0] });
        }
        let flags_ok = flags == 0 || (kind == evt_kind::SCAN_DONE && flags == 1);
        range(kind, "flags", flags as u64, flags_ok)?;
        let event = match kind {
            evt_kind::BITMAP => {
                let count = (w[3] >> 24) as u8;
                range(kind, "count", count as u64, count as usize <= BITMAP_WORDS_PER_ENTRY)?;
                let mut breach = [0u32; BITMAP_WORDS_PER_ENTRY];
                let mut at_risk = [0u32; BITMAP_WORDS_PER_ENTRY];
                breach.copy_from_slice(&w[4..10]);
                at_risk.copy_from_slice(&w[10..16]);
                Event::Bitmap { cmd_seq: w[2], base_word: w[3] & 0xFF_FFFF, count, breach, at_risk }
            }
            evt_kind::CHANGED_WORDS => {
                range(kind, "count", w[3] as u64, w[3] as usize <= CHANGED_PER_ENTRY)?;
                let mut words = [(0, 0, 0); CHANGED_PER_ENTRY];
                for (k, x) in words.iter_mut().enumerate() {
                    *x = (w[4 + 3 * k], w[5 + 3 * k], w[6 + 3 * k]);
                }
                Event::ChangedWords { cmd_seq: w[2], count: w[3] as u8, words }
            }
            evt_kind::SCAN_DONE => {
                reserved_from(kind, w, 8)?;
                Event::ScanDone {
                    cmd_seq: w[2],
                    incremental: flags == 1,
                    asset: asset16(kind, w[3])?,
                    groups: w[4],
                    cycles: w[5],
                    breached: w[6],
                    at_risk: w[7],
                }
            }
            evt_kind::ERROR => {
                reserved_from(kind, w, 5)?;
                Event::Error { cmd_seq: w[2], errors: w[3], detail: w[4] }
            }
            evt_kind::STATS => {
                reserved_from(kind, w, 8)?;
                Event::Stats {
                    cmd_seq: w[2],
                    commands: w[3],
                    scans: w[4],
                    words: w[5],
                    busy_cycles: w[6],
                    errors: w[7],
                }
            }
            evt_kind::FENCE_DONE => {
                reserved_from(kind, w, 4)?;
                Event::FenceDone { cmd_seq: w[2], token: w[3] }
            }
            _ => return Err(RingError::UnknownKind(kind)),
        };
        Ok(EventEntry { phase, seq: w[1], event })
    }

    /// Decodes a 64-byte ring entry.
    pub fn decode(b: &EntryBytes) -> Result<EventEntry, RingError> {
        Self::decode_words(&to_words(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::widths::COEFF_MAX;
    use proptest::prelude::*;

    fn price() -> impl Strategy<Value = PriceEntry> {
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c, d)| PriceEntry {
            spot: QuotedPrice { asset: a, liability: b },
            stressed: QuotedPrice { asset: c, liability: d },
        })
    }

    fn coeff() -> impl Strategy<Value = i32> {
        prop_oneof![Just(COEFF_MIN), Just(COEFF_MAX), Just(0), Just(-1), COEFF_MIN..=COEFF_MAX]
    }

    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            (any::<u16>(), price()).prop_map(|(asset, price)| Command::Tick { asset, price }),
            (any::<u16>(), price(), any::<bool>()).prop_map(|(asset, price, last)| Command::BatchTick {
                asset,
                price,
                last
            }),
            (any::<u32>(), any::<u16>(), prop::collection::vec((any::<u16>(), coeff()), 0..=8)).prop_map(
                |(account, word, t)| {
                    let mut terms = [Coeff::default(); TERMS_PER_ENTRY];
                    for (k, (asset, coeff)) in t.iter().enumerate() {
                        terms[k] = Coeff { asset: *asset, coeff: *coeff };
                    }
                    Command::AccountTerms { account, word, count: t.len() as u8, terms }
                }
            ),
            (any::<u32>(), any::<u16>(), any::<u8>()).prop_map(|(group, first, len)| Command::SetGroup {
                group,
                first,
                len
            }),
            (any::<u32>(), any::<u32>())
                .prop_map(|(active_accounts, term_slots)| Command::Params { active_accounts, term_slots }),
            any::<u32>().prop_map(|token| Command::Fence { token }),
            Just(Command::ScanFull),
        ]
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (any::<u32>(), 0u32..1 << 24, 0u8..=6, any::<[u32; 6]>(), any::<[u32; 6]>()).prop_map(
                |(cmd_seq, base_word, count, breach, at_risk)| Event::Bitmap {
                    cmd_seq,
                    base_word,
                    count,
                    breach,
                    at_risk
                }
            ),
            (any::<u32>(), 0u8..=4, any::<[(u32, u32, u32); 4]>())
                .prop_map(|(cmd_seq, count, words)| Event::ChangedWords { cmd_seq, count, words }),
            (any::<u32>(), any::<bool>(), any::<u16>(), any::<[u32; 4]>()).prop_map(
                |(cmd_seq, incremental, asset, x)| {
                    Event::ScanDone {
                        cmd_seq,
                        incremental,
                        asset,
                        groups: x[0],
                        cycles: x[1],
                        breached: x[2],
                        at_risk: x[3],
                    }
                }
            ),
            any::<[u32; 3]>().prop_map(|x| Event::Error { cmd_seq: x[0], errors: x[1], detail: x[2] }),
            any::<[u32; 6]>().prop_map(|x| Event::Stats {
                cmd_seq: x[0],
                commands: x[1],
                scans: x[2],
                words: x[3],
                busy_cycles: x[4],
                errors: x[5]
            }),
            any::<[u32; 2]>().prop_map(|x| Event::FenceDone { cmd_seq: x[0], token: x[1] }),
        ]
    }

    proptest! {
        #[test]
        fn command_round_trips(cmd in command(), seq in any::<u32>()) {
            let bytes = cmd.encode(seq);
            prop_assert_eq!(Command::decode(&bytes), Ok((seq, cmd)));
        }

        #[test]
        fn event_round_trips(event in event(), seq in any::<u32>(), phase in any::<bool>()) {
            let e = EventEntry { phase, seq, event };
            let bytes = e.encode();
            prop_assert_eq!(EventEntry::phase_of(&bytes), phase);
            prop_assert_eq!(EventEntry::decode(&bytes), Ok(e));
        }

        #[test]
        fn corrupted_commands_never_decode_silently(cmd in command(), word in 0usize..16, bit in 0u32..32) {
            // Flipping one bit either fails to decode or decodes to something different:
            // never to the same command (the encoding has no don't-care bits).
            let mut w = cmd.encode_words(7);
            w[word] ^= 1 << bit;
            if let Ok((seq, c)) = Command::decode_words(&w) {
                prop_assert!(seq != 7 || c != cmd);
            }
        }
    }

    #[test]
    fn layout_is_little_endian_with_kind_and_seq_first() {
        let b = Command::Fence { token: 0xA1B2_C3D4 }.encode(0x0102_0304);
        assert_eq!(&b[0..12], &[0x06, 0, 0, 0, 0x04, 0x03, 0x02, 0x01, 0xD4, 0xC3, 0xB2, 0xA1]);
        let e = EventEntry { phase: true, seq: 1, event: Event::FenceDone { cmd_seq: 2, token: 3 } };
        assert_eq!(&e.encode()[0..4], &[0x86, 0, 0, 0x80]);
    }

    #[test]
    fn bad_entries_are_refused() {
        let mut w = [0u32; RING_ENTRY_WORDS];
        w[0] = 0x7F;
        assert_eq!(Command::decode_words(&w), Err(RingError::UnknownKind(0x7F)));
        w[0] = cmd_kind::SCAN_FULL as u32;
        w[9] = 1;
        assert!(matches!(Command::decode_words(&w), Err(RingError::Reserved { word: 9, .. })));
        let mut t = Command::AccountTerms {
            account: 1,
            word: 0,
            count: 1,
            terms: [Coeff::default(); TERMS_PER_ENTRY],
        }
        .encode_words(0);
        t[4] = i32::MIN as u32;
        assert!(matches!(Command::decode_words(&t), Err(RingError::Range { field: "coeff", .. })));
    }

    #[test]
    fn retired_kinds_and_wide_fields_are_refused() {
        let mut w = [0u32; RING_ENTRY_WORDS];
        w[0] = 0x04;
        assert_eq!(Command::decode_words(&w), Err(RingError::UnknownKind(0x04)));
        let mut g = Command::SetGroup { group: 3, first: 2047, len: 16 }.encode_words(0);
        assert_eq!(g[3], 2047 | 16 << 16);
        g[3] |= 1 << 24;
        assert!(matches!(Command::decode_words(&g), Err(RingError::Range { field: "w3", .. })));
        let mut t = Command::AccountTerms { account: 1, word: 5, count: 9, terms: [Coeff::default(); 8] }
            .encode_words(0);
        assert!(matches!(Command::decode_words(&t), Err(RingError::Range { field: "count", .. })));
        t[3] = 5 | 1 << 16;
        t[0] |= 1 << 8;
        assert!(matches!(Command::decode_words(&t), Err(RingError::Range { field: "flags", .. })));
    }
}
