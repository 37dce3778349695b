//! The book in external memory: its layout, the golden model of the external-memory scan, a
//! memory model for emulation (latency, bandwidth, back-pressure) and a cycle model of the
//! streaming (`core::ext_scan`, `core::mem_reader`), all in plain Rust.
//!
//! - [`Layout`] and [`Layout::image`]: where every term word lives (the one definition; the
//!   block's docs describe it).
//! - [`scan_model`]: the bitmap words a full scan sends, from the image, with the core's lane
//!   arithmetic ([`crate::golden::lane_health_negative`]).
//! - [`exposed_groups`] and [`inc_scan_model`]: the incremental scan of one asset, the groups
//!   holding a non-zero term of it (what the host lists to the block) and the words sent: the
//!   full scan's word of each listed group, in the list's order.
//! - [`MemModel`]: one channel of a native port served with a configurable latency (a random
//!   range, in order) and bandwidth (words per cycle, a fraction at most 1), and random cycles
//!   without `cmd_ready`.
//! - [`StreamModel`]: the block's registers stepped in Rust, cycle for cycle (checked against
//!   the rust-hdl block on small books), fast enough for a book of a million accounts.

use crate::abi::config::{CARD_ASSETS, LANES, TERM_SLOTS};
use crate::abi::widths::{COEFF_MIN, Coeff, PriceEntry};
use crate::golden::lane_health_negative;
use std::collections::VecDeque;

/// The term word in external memory: bits 30:0 the magnitude, bit 31 the sign, bits 39:32 the
/// asset. A zero word is a zero term.
pub fn term_word(t: Coeff) -> u64 {
    ((t.asset as u64) << 32) | ((t.coeff < 0) as u64) << 31 | t.coeff.unsigned_abs() as u64
}

/// The coefficient and asset of a term word (inverse of [`term_word`]).
pub fn word_term(w: u64) -> Coeff {
    let mag = (w & 0x7FFF_FFFF) as i32;
    Coeff { asset: ((w >> 32) & 0xFF) as u16, coeff: if w >> 31 & 1 == 1 { -mag } else { mag } }
}

/// A bad book for the external memory.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// An account has more terms than the layout's slots.
    #[error("account {account} has {terms} terms, more than the layout's {slots} slots")]
    TooManyTerms {
        /// Account index.
        account: usize,
        /// Its terms.
        terms: usize,
        /// Slots per account.
        slots: usize,
    },
    /// A term's asset is outside the price table.
    #[error("account {account}: asset {asset} is not below {CARD_ASSETS}")]
    Asset {
        /// Account index.
        account: usize,
        /// The asset.
        asset: u16,
    },
    /// A coefficient is `i32::MIN`.
    #[error("account {account}: coefficient {coeff} is below {COEFF_MIN}")]
    Coeff {
        /// Account index.
        account: usize,
        /// The coefficient.
        coeff: i32,
    },
    /// The shape is not one the block takes.
    #[error("layout: {0}")]
    Shape(&'static str),
}

/// How a book lies in `ch` channels of `k` term words per memory word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Memory channels.
    pub ch: usize,
    /// Term words per memory word (the data width is `64 k` bits).
    pub k: usize,
    /// Term words per account (1..=16).
    pub slots: usize,
    /// Groups of `LANES` accounts.
    pub groups: usize,
}

impl Layout {
    /// The layout of `accounts` accounts with `slots` words each.
    pub fn new(ch: usize, k: usize, slots: usize, accounts: usize) -> Result<Self, LayoutError> {
        if !ch.is_power_of_two() || !k.is_power_of_two() || ch * k > LANES || ch > 16 {
            return Err(LayoutError::Shape("channels and words per beat are powers of two, ch * k <= LANES"));
        }
        if slots == 0 || slots > TERM_SLOTS {
            return Err(LayoutError::Shape("slots must be 1..=16"));
        }
        Ok(Self { ch, k, slots, groups: accounts.div_ceil(LANES) })
    }

    /// Steps per row: `LANES / (k * ch)`.
    pub fn phases(&self) -> usize {
        LANES / (self.k * self.ch)
    }

    /// Memory words per channel: `groups * slots * phases`.
    pub fn words_per_channel(&self) -> usize {
        self.groups * self.slots * self.phases()
    }

    /// Where term word `slot` of `account` lives: (channel, word address from the base, term
    /// within the word).
    pub fn place(&self, account: usize, slot: usize) -> (usize, usize, usize) {
        let (g, l) = (account / LANES, account % LANES);
        let row = g * self.slots + slot;
        let j = row * (LANES / self.k) + l / self.k;
        (j % self.ch, j / self.ch, l % self.k)
    }

    /// The book's image: per channel, its words (each `k` term words, flattened).
    pub fn image(&self, accounts: &[Vec<Coeff>]) -> Result<Vec<Vec<u64>>, LayoutError> {
        let mut img = vec![vec![0u64; self.words_per_channel() * self.k]; self.ch];
        for (a, terms) in accounts.iter().enumerate() {
            if terms.len() > self.slots {
                return Err(LayoutError::TooManyTerms { account: a, terms: terms.len(), slots: self.slots });
            }
            for (s, t) in terms.iter().enumerate() {
                if t.asset as usize >= CARD_ASSETS {
                    return Err(LayoutError::Asset { account: a, asset: t.asset });
                }
                if t.coeff < COEFF_MIN {
                    return Err(LayoutError::Coeff { account: a, coeff: t.coeff });
                }
                let (c, addr, k) = self.place(a, s);
                img[c][addr * self.k + k] = term_word(*t);
            }
        }
        Ok(img)
    }
}

/// One word of a scan's output: the breach and at-risk bits of accounts `offset ..
/// offset + LANES` (bit `l` is account `offset + l`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitmapWord {
    /// First account.
    pub offset: u32,
    /// Breach bits.
    pub breach: u32,
    /// At-risk bits.
    pub at_risk: u32,
}

/// The golden model of the external-memory scan: the words it sends, read from the image, each
/// account's verdicts by the core's lane arithmetic over its `slots` words (zero words
/// included, as the lanes take them).
pub fn scan_model(lay: &Layout, img: &[Vec<u64>], prices: &[PriceEntry]) -> Vec<BitmapWord> {
    (0..lay.groups).map(|g| group_word(lay, img, prices, g)).collect()
}

/// The groups of the image that hold a non-zero term of `asset`, ascending: the host's
/// exposure index of that asset (a group with only a zero-coefficient word of the asset is
/// not exposed: that term adds nothing to any account's health).
pub fn exposed_groups(lay: &Layout, img: &[Vec<u64>], asset: u16) -> Vec<u32> {
    (0..lay.groups)
        .filter(|&g| {
            (0..LANES).any(|l| {
                (0..lay.slots).any(|s| {
                    let (c, addr, k) = lay.place(g * LANES + l, s);
                    let t = word_term(img[c][addr * lay.k + k]);
                    t.asset == asset && t.coeff != 0
                })
            })
        })
        .map(|g| g as u32)
        .collect()
}

/// The golden model of an incremental scan of the listed `groups`: per group, in the list's
/// order, the word a full scan sends for it ([`scan_model`]'s).
pub fn inc_scan_model(
    lay: &Layout,
    img: &[Vec<u64>],
    prices: &[PriceEntry],
    groups: &[u32],
) -> Vec<BitmapWord> {
    groups.iter().map(|&g| group_word(lay, img, prices, g as usize)).collect()
}

/// Group `g`'s bitmap word.
fn group_word(lay: &Layout, img: &[Vec<u64>], prices: &[PriceEntry], g: usize) -> BitmapWord {
    let price = |a: u16| prices.get(a as usize).copied().unwrap_or_default();
    {
        {
            let (mut breach, mut at_risk) = (0u32, 0u32);
            for l in 0..LANES {
                let terms: Vec<Coeff> = (0..lay.slots)
                    .map(|s| {
                        let (c, addr, k) = lay.place(g * LANES + l, s);
                        word_term(img[c][addr * lay.k + k])
                    })
                    .collect();
                let spot: Vec<(i32, u32)> =
                    terms.iter().map(|t| (t.coeff, price(t.asset).spot.for_coeff(t.coeff))).collect();
                let stress: Vec<(i32, u32)> =
                    terms.iter().map(|t| (t.coeff, price(t.asset).stressed.for_coeff(t.coeff))).collect();
                breach |= (lane_health_negative(&spot) as u32) << l;
                at_risk |= (lane_health_negative(&stress) as u32) << l;
            }
            BitmapWord { offset: (g * LANES) as u32, breach, at_risk }
        }
    }
}

/// A memory channel's timing in emulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemTiming {
    /// Fewest cycles from a command's acceptance to its data on the port.
    pub latency_min: u32,
    /// Most cycles (each command's latency is drawn from the range; data stays in order).
    pub latency_max: u32,
    /// Bandwidth: `rate_num / rate_den` words per cycle (at most 1: one word per cycle).
    pub rate_num: u32,
    /// See `rate_num`.
    pub rate_den: u32,
    /// Chance in 1/256 that `cmd_ready` is low in a cycle (back-pressure from the controller).
    pub stall: u8,
    /// Commands the controller holds before it stops taking more.
    pub queue: usize,
    /// Seed of the channel's generator.
    pub seed: u64,
}

impl MemTiming {
    /// Fixed latency, one word per `den / num` cycles, no random stalls.
    pub fn fixed(latency: u32, rate_num: u32, rate_den: u32) -> Self {
        Self { latency_min: latency, latency_max: latency, rate_num, rate_den, stall: 0, queue: 64, seed: 1 }
    }
}

/// One channel of a native port, served from an image. Each cycle: read [`MemModel::cmd_ready`]
/// and [`MemModel::rdata`] (they depend on the state only), present them, then call
/// [`MemModel::step`] with the command the master offered and whether it took the data.
#[derive(Clone, Debug)]
pub struct MemModel {
    t: MemTiming,
    k: usize,
    now: u64,
    tokens: u64,
    stalled: bool,
    pending: VecDeque<(u64, u32)>,
    last_due: u64,
    rng: u64,
    /// Commands accepted.
    pub commands: u64,
}

impl MemModel {
    /// A channel of `k` term words per memory word.
    pub fn new(t: MemTiming, k: usize) -> Self {
        assert!(
            t.rate_num >= 1 && t.rate_num <= t.rate_den,
            "bandwidth is a fraction of a word per cycle, at most 1"
        );
        assert!(t.latency_min >= 1 && t.latency_min <= t.latency_max, "latency range");
        let mut m = Self {
            t,
            k,
            now: 0,
            tokens: t.rate_den as u64,
            stalled: false,
            pending: VecDeque::new(),
            last_due: 0,
            rng: t.seed | 1,
            commands: 0,
        };
        m.stalled = m.roll(t.stall);
        m
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng >> 11
    }

    fn roll(&mut self, p: u8) -> bool {
        p > 0 && (self.next() & 0xFF) < p as u64
    }

    /// The controller takes a command this cycle.
    pub fn cmd_ready(&self) -> bool {
        !self.stalled && self.tokens >= self.t.rate_den as u64 && self.pending.len() < self.t.queue
    }

    /// The word on the read data port this cycle, if any (its address).
    pub fn rdata(&self) -> Option<u32> {
        self.pending.front().filter(|(due, _)| *due <= self.now).map(|&(_, a)| a)
    }

    /// The data word at `addr` of channel image `img` (zero beyond it).
    pub fn word<'a>(&self, img: &'a [u64], addr: u32) -> &'a [u64] {
        let i = addr as usize * self.k;
        img.get(i..i + self.k).unwrap_or(&[])
    }

    /// Ends the cycle: `cmd` the address of the command offered (taken if
    /// [`MemModel::cmd_ready`]), `taken` whether the master took the read data.
    pub fn step(&mut self, cmd: Option<u32>, taken: bool) {
        let ready = self.cmd_ready();
        if taken && self.rdata().is_some() {
            self.pending.pop_front();
        }
        if let Some(a) = cmd
            && ready
        {
            self.tokens -= self.t.rate_den as u64;
            let span = (self.t.latency_max - self.t.latency_min) as u64;
            let lat = self.t.latency_min as u64 + if span > 0 { self.next() % (span + 1) } else { 0 };
            let due = (self.now + lat).max(self.last_due + 1);
            self.last_due = due;
            self.pending.push_back((due, a));
            self.commands += 1;
        }
        // At most one word of credit banked beyond the one being spent.
        self.tokens = (self.tokens + self.t.rate_num as u64).min(2 * self.t.rate_den as u64 - 1);
        self.now += 1;
        self.stalled = self.roll(self.t.stall);
    }
}

/// The output consumer's readiness: not ready with chance `p`/256 in a cycle (xorshift64; the
/// rust-hdl driver and [`StreamModel`] draw the same sequence from the same seed).
#[derive(Clone, Debug)]
pub struct Stall {
    p: u8,
    rng: u64,
}

impl Stall {
    /// Chance `p`/256 per cycle, from `seed`.
    pub fn new(p: u8, seed: u64) -> Self {
        Self { p, rng: seed | 1 }
    }

    /// Whether the consumer is ready this cycle (one draw per cycle).
    pub fn ready(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        !(self.p > 0 && ((self.rng >> 24) & 0xFF) < self.p as u64)
    }
}

/// The block's constants the cycle model needs (`core::mem_reader`, `core::ext_scan`,
/// `core::fifo`); the tests check the model against the block, so a change there shows.
pub mod consts {
    /// Commands per burst.
    pub const BURST: u64 = 8;
    /// Cycles from a step to its verdicts.
    pub const LANE_PATH: u64 = 12;
    /// Output FIFO entries.
    pub const FIFO_DEPTH: u64 = 32;
    /// Free entries below which the FIFO stops the steps.
    pub const FIFO_MARGIN: u64 = 19;
    /// Cycles of the start's shift-and-add (words per channel).
    pub const MUL_CYCLES: u64 = 6;
    /// Cycles without a step, a word out or a group taken after which the cycle model stops.
    pub const STUCK_CYCLES: u64 = 1 << 20;
    /// Entries of the incremental scan's group queue.
    pub const GROUP_QUEUE: u64 = 64;
}

/// One channel's reader ([`crate::core::mem_reader`]) in plain Rust: the same registers.
#[derive(Clone, Debug, Default)]
struct ReaderModel {
    addr: u32,
    left: u64,
    blen: u64,
    used: u64,
    ram: VecDeque<u32>,
    flight: Option<u32>,
    queue: VecDeque<u32>,
    depth: u64,
    next: Option<(u32, u64)>,
}

impl ReaderModel {
    fn step(
        &mut self,
        start: Option<(u32, u64)>,
        seg: Option<(u32, u64)>,
        cmd_ready: bool,
        rdata: Option<u32>,
        pop: bool,
    ) {
        use consts::BURST;
        let issue = self.blen != 0 && cmd_ready;
        let room = self.used + BURST <= self.depth;
        let left_after = self.left - issue as u64;
        let (mut blen, mut used) = (self.blen - issue as u64, self.used - pop as u64);
        // A waiting segment becomes the run when this one has no command left.
        let switch = self.next.filter(|_| left_after == 0);
        let bl = switch.map_or(left_after, |(_, b)| b).min(BURST);
        if (self.blen == 0 || (self.blen == 1 && cmd_ready)) && room && (left_after != 0 || switch.is_some())
        {
            blen = bl;
            used += bl;
        }
        let occ = self.queue.len() as u64;
        let rd_go = !self.ram.is_empty() && occ + (self.flight.is_some() as u64) < (pop as u64) + 2;
        if pop {
            self.queue.pop_front();
        }
        if let Some(w) = self.flight.take() {
            self.queue.push_back(w);
        }
        if rd_go {
            self.flight = self.ram.pop_front();
        }
        if let Some(a) = rdata {
            self.ram.push_back(a);
        }
        if issue {
            self.addr += 1;
        }
        self.left = left_after;
        self.blen = blen;
        self.used = used;
        match self.next {
            None => self.next = seg,
            Some((a, b)) if left_after == 0 => {
                self.next = None;
                self.addr = a;
                self.left = b;
            }
            Some(_) => {}
        }
        if let Some((base, beats)) = start {
            *self = Self { addr: base, left: beats, depth: self.depth, ..Default::default() };
        }
    }
}

/// An incremental scan's input: the groups the host lists (each once; the block takes them in
/// this order) and the host port's pace: the group is offered in a cycle unless a [`Stall`]
/// of chance `stall`/256 from `seed` (drawn once every cycle from the start pulse on) says not.
#[derive(Clone, Copy, Debug)]
pub struct IncGroups<'a> {
    /// The groups, in the order given.
    pub groups: &'a [u32],
    /// Chance in 1/256 that the host offers nothing in a cycle.
    pub stall: u8,
    /// Seed of the host port's generator.
    pub seed: u64,
}

/// The result of [`StreamModel::run`], as the rust-hdl driver reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamRun {
    /// The bitmap words, in order.
    pub words: Vec<BitmapWord>,
    /// Per word, the cycle it left (cycle 0: the start pulse).
    pub word_cycles: Vec<u64>,
    /// The cycle the done marker left.
    pub done_cycle: u64,
    /// Commands each channel took.
    pub commands: Vec<u64>,
    /// Incremental scan: the most groups taken on the host port whose words had not left
    /// (at most the group queue's entries).
    pub max_queued: u64,
}

/// The external-memory scan stepped cycle by cycle in plain Rust: the readers' registers
/// (`ReaderModel`), the sequencer, the lanes' delay and the output FIFO, each as the block
/// has it, with the lanes' arithmetic done by the golden model's column accumulators
/// ([`crate::golden::product_columns`], [`crate::golden::columns_negative`]) as the terms
/// stream past.
#[derive(Clone, Debug)]
pub struct StreamModel {
    lay: Layout,
    buffer_words: u64,
}

impl StreamModel {
    /// A model of the block for layout `lay` with prefetch buffers of `buffer_words` words.
    pub fn new(lay: Layout, buffer_words: usize) -> Self {
        Self { lay, buffer_words: buffer_words as u64 }
    }

    /// Runs a full scan of `img` (base 0) with `prices`, each channel served by a
    /// [`MemModel`] with `timing` (seed `timing.seed + 7919 c` for channel `c`), the consumer
    /// stalled by [`Stall`]`(out_stall, seed)`. If `sink` is given, words go there and not
    /// into the result (for books whose words do not fit in memory twice).
    pub fn run(
        &self,
        img: &[Vec<u64>],
        prices: &[PriceEntry],
        timing: MemTiming,
        out_stall: u8,
        seed: u64,
        sink: Option<&mut dyn FnMut(BitmapWord)>,
    ) -> StreamRun {
        self.run_scan(img, prices, None, timing, out_stall, seed, sink)
    }

    /// Runs an incremental scan of the groups `inc` lists (the block's `inc` start, `groups` =
    /// their count, the groups offered on its host port as [`IncGroups`] says); otherwise as
    /// [`StreamModel::run`].
    #[allow(clippy::too_many_arguments)]
    pub fn run_inc(
        &self,
        img: &[Vec<u64>],
        prices: &[PriceEntry],
        inc: IncGroups,
        timing: MemTiming,
        out_stall: u8,
        seed: u64,
        sink: Option<&mut dyn FnMut(BitmapWord)>,
    ) -> StreamRun {
        self.run_scan(img, prices, Some(inc), timing, out_stall, seed, sink)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_scan(
        &self,
        img: &[Vec<u64>],
        prices: &[PriceEntry],
        inc: Option<IncGroups>,
        timing: MemTiming,
        out_stall: u8,
        seed: u64,
        mut sink: Option<&mut dyn FnMut(BitmapWord)>,
    ) -> StreamRun {
        use crate::golden::{columns_negative, product_columns};
        use consts::*;
        let lay = self.lay;
        let (ch, k) = (lay.ch, lay.k);
        let ph_last = lay.phases() as u64 - 1;
        let mut mem: Vec<MemModel> = (0..ch)
            .map(|c| {
                MemModel::new(MemTiming { seed: timing.seed.wrapping_add(c as u64 * 7919), ..timing }, k)
            })
            .collect();
        let mut rd = vec![ReaderModel { depth: self.buffer_words, ..Default::default() }; ch];
        let mut stall = Stall::new(out_stall, seed);
        let price = |a: u16| prices.get(a as usize).copied().unwrap_or_default();
        // Per lane: (channel, term within the word, phase).
        let src: Vec<(usize, usize, u64)> =
            (0..LANES).map(|l| ((l / k) % ch, l % k, ((l / k) / ch) as u64)).collect();
        let mut acc = [[[0i64; 4]; 2]; LANES];
        let mut run = StreamRun::default();
        // Sequencer.
        // The start pulse is cycle 0; the sequencer runs (or, with no group, drains) from 1.
        let (mut running, mut drain) = (false, None::<u64>);
        let (mut ph, mut s, mut g) = (0u64, 0u64, 0u64);
        // Groups the sequencer runs: the book's, or the listed ones.
        let n_groups = inc.map_or(lay.groups, |i| i.groups.len()) as u64;
        let (g_last, s_last) = (n_groups.wrapping_sub(1), lay.slots as u64 - 1);
        let beats = if inc.is_some() { 0 } else { lay.words_per_channel() as u64 };
        // Incremental: the host port, the group queue (entries by index: written, sent to the
        // readers, left at the output), a group's words per channel.
        let list: &[u32] = inc.map_or(&[], |i| i.groups);
        let mut host = inc.map(|i| Stall::new(i.stall, i.seed));
        let (mut xn, mut rq, mut oq) = (0usize, 0usize, 0usize);
        let seg_beats = (lay.slots * lay.phases()) as u64;
        // Words on their way through the lanes (due cycle), the FIFO's entries (None: done).
        let mut lanes_out: VecDeque<(u64, BitmapWord)> = VecDeque::new();
        let mut fifo: VecDeque<Option<BitmapWord>> = VecDeque::new();
        let mut af = false;
        let mut offset = 0u32;
        let mut cycle = 0u64;
        // A model that stops moving panics rather than running forever.
        let mut moved = 0u64;
        loop {
            let ready = stall.ready();
            // Incremental: the host port and the distributor, from this cycle's registers.
            let offered = host.as_mut().is_some_and(|h| h.ready()) && xn < list.len();
            let take = offered && running && (xn - oq) < GROUP_QUEUE as usize;
            let seg = (running
                && inc.is_some()
                && cycle > MUL_CYCLES
                && rq < xn
                && rd.iter().all(|r| r.next.is_none()))
            .then(|| (list[rq] * lay.slots as u32) << lay.phases().trailing_zeros());
            // Output port: the FIFO's head.
            let pop_out = ready && !fifo.is_empty();
            let mut done = false;
            if pop_out {
                match fifo.pop_front().unwrap() {
                    None => {
                        run.done_cycle = cycle;
                        done = true;
                    }
                    Some(w) => {
                        let w = if inc.is_some() {
                            oq += 1;
                            BitmapWord { offset: list[oq - 1] * LANES as u32, ..w }
                        } else {
                            BitmapWord { offset, ..w }
                        };
                        offset += LANES as u32;
                        match sink.as_mut() {
                            Some(f) => f(w),
                            None => run.words.push(w),
                        }
                        run.word_cycles.push(cycle);
                    }
                }
            }
            let count_before = fifo.len() as u64 + pop_out as u64;
            // A step: every channel has a word, the scan runs, the FIFO has room.
            let fire = running && !af && rd.iter().all(|r| !r.queue.is_empty());
            let mut fifo_write = None;
            if let Some(&(due, w)) = lanes_out.front()
                && due == cycle
            {
                fifo_write = Some(Some(w));
                lanes_out.pop_front();
            }
            if let Some(d) = drain {
                if d == 0 {
                    fifo_write = Some(None);
                    drain = None;
                } else {
                    drain = Some(d - 1);
                }
            }
            if fire {
                let grp_end = ph == ph_last && s == s_last;
                for (l, &(c, kk, lp)) in src.iter().enumerate() {
                    if lp != ph {
                        continue;
                    }
                    let t = word_term(img[c][rd[c].queue[0] as usize * k + kk]);
                    if s == 0 {
                        acc[l] = [[0; 4]; 2];
                    }
                    let p = price(t.asset);
                    let sp = product_columns(t.coeff.unsigned_abs(), p.spot.for_coeff(t.coeff));
                    let st = product_columns(t.coeff.unsigned_abs(), p.stressed.for_coeff(t.coeff));
                    for i in 0..4 {
                        let sign = if t.coeff < 0 { -1 } else { 1 };
                        acc[l][0][i] += sign * sp[i];
                        acc[l][1][i] += sign * st[i];
                    }
                }
                if grp_end {
                    let (mut breach, mut at_risk) = (0u32, 0u32);
                    for (l, a) in acc.iter().enumerate() {
                        breach |= (columns_negative(a[0]) as u32) << l;
                        at_risk |= (columns_negative(a[1]) as u32) << l;
                    }
                    lanes_out.push_back((cycle + LANE_PATH, BitmapWord { offset: 0, breach, at_risk }));
                }
                ph += 1;
                if ph > ph_last {
                    ph = 0;
                    s += 1;
                    if s > s_last {
                        s = 0;
                        if g == g_last {
                            running = false;
                            drain = Some(LANE_PATH);
                        }
                        g += 1;
                    }
                }
            }
            // Memory ports and readers (started when the start's shift-and-add ends).
            let start = (cycle == MUL_CYCLES).then_some((0u32, beats));
            for c in 0..ch {
                let cmd_ready = mem[c].cmd_ready();
                let rdata = mem[c].rdata();
                let cmd = (rd[c].blen != 0).then_some(rd[c].addr);
                rd[c].step(start, seg.map(|a| (a, seg_beats)), cmd_ready, rdata, fire);
                mem[c].step(cmd, rdata.is_some());
            }
            if let Some(e) = fifo_write {
                fifo.push_back(e);
            }
            if take {
                xn += 1;
            }
            if seg.is_some() {
                rq += 1;
            }
            run.max_queued = run.max_queued.max((xn - oq) as u64);
            af = count_before >= FIFO_DEPTH - FIFO_MARGIN;
            if cycle == 0 {
                if n_groups == 0 {
                    drain = Some(0);
                } else {
                    running = true;
                }
            }
            cycle += 1;
            if done {
                break;
            }
            if fire || pop_out || take {
                moved = cycle;
            }
            assert!(
                cycle - moved < STUCK_CYCLES,
                "the scan made no step for {STUCK_CYCLES} cycles (cycle {cycle})"
            );
        }
        run.commands = mem.iter().map(|m| m.commands).collect();
        run
    }
}
