//! [`LinkEngine`]: the card behind the link, presented like a scan engine.
//!
//! It keeps the host's mirror of the price vector and of the breach and at-risk bitmaps. A
//! tick posts one command and polls the event ring until the card's `ScanDone` for it,
//! applying the changed bitmap words as they arrive; one tick is in flight at a time, so
//! tick-to-bitmap is one round trip. Upserts and removes are posted without waiting (the card
//! answers them only on error); their bits are computed on the host from the mirror prices,
//! which is one account's few multiplies, exactly as the card would.
//!
//! A new engine first empties the groups it will use (one `SetGroup` each) and clears the
//! prices, since the card keeps its memories across a soft reset and may hold another host's
//! book.
//!
//! The host places the terms: a [`PackedLayout`] of the card's shape (its `CONFIG_LANES` and
//! `CONFIG_ACCOUNTS`, [`Shape::of_card`]) turns each upsert into term writes at (account,
//! word) and, when the account's group grows, a `SetGroup` after the group's new words (see
//! `liqscan_hdl::layout`: a group grows in place inside its blocks, else moves to free ones;
//! a scan never sees half a move). The card walks each group's length, so a book of two-term
//! accounts is scanned in two words a group, not sixteen.
//!
//! Accounts the card cannot hold are kept on the host beside it (`held`): more than 16 terms,
//! or one asset as both collateral and debt (see `liqscan_hdl::abi::card_holds`), or a group
//! that finds no room in the card's term memory ([`LayoutError::NoRoom`], counted in
//! [`LinkEngine::refused`]; nothing is sent for the upsert but the zeros that empty the
//! account's old words). Their card slot is left empty and their bits, computed exactly on the
//! host, are merged into the card's bitmap words, so the bitmaps are those of the whole book.
//!
//! A call refused on the host (bad slot, terms or asset) changes nothing; a card that stops
//! answering or answers wrongly comes back as [`EngineError::Card`], after which the mirror is
//! not to be trusted: wrap the engine in a
//! [`FailoverEngine`](crate::engine::failover::FailoverEngine) to switch to software then.

use liqscan_hdl::abi::config::TERM_WORDS_PER_ACCOUNT;
use liqscan_hdl::abi::{Coeff, Command, Event, EventEntry, PriceEntry, check_terms, check_terms_software};
use liqscan_hdl::golden::CoreCmd;
use liqscan_hdl::layout::{LayoutError, PackedLayout, Shape, ring_commands};

use super::held::Held;
use super::{CardLink, LinkError};
use crate::bitmap;
use crate::engine::{EngineError, ScanEngine};
use crate::reference;

/// The card as a scan engine.
pub struct LinkEngine {
    link: CardLink,
    slots: usize,
    prices: Vec<PriceEntry>,
    breach: Vec<u64>,
    at_risk: Vec<u64>,
    dirty: Vec<u64>,
    dirty_list: Vec<u32>,
    /// Core cycles the card reported for the last scan.
    pub last_cycles: u32,
    /// Groups the card reported scanning in the last scan.
    pub last_groups: u32,
    fence_token: u32,
    layout: PackedLayout,
    core_cmds: Vec<CoreCmd>,
    ring_cmds: Vec<Command>,
    refused: u64,
    last_refusal: Option<LayoutError>,
    held: Held,
}

impl LinkEngine {
    /// Uses `slots` of the card's accounts over `assets` assets.
    pub fn new(mut link: CardLink, slots: usize, assets: usize) -> Result<LinkEngine, EngineError> {
        let cfg = link.config();
        if slots > cfg.accounts as usize {
            return Err(LinkError::Layout(format!(
                "book of {slots} accounts does not fit the card's {} (use the software backend, or a larger card)",
                cfg.accounts
            ))
            .into());
        }
        if assets > cfg.assets as usize {
            return Err(LinkError::Layout(format!(
                "{assets} assets; the card's price table has {}",
                cfg.assets
            ))
            .into());
        }
        // Each group walks its own length: the parameter only caps it.
        link.post(&Command::Params { active_accounts: slots as u32, term_slots: cfg.term_slots })?;
        let card = Shape::of_card(cfg.lanes as usize, cfg.accounts as usize);
        let lanes = cfg.lanes as usize;
        let shape =
            Shape { lanes, groups: slots.div_ceil(lanes), term_words: TERM_WORDS_PER_ACCOUNT * card.groups };
        let words = bitmap::words_for(slots);
        let mut e = LinkEngine {
            link,
            slots,
            prices: vec![PriceEntry::default(); assets],
            breach: vec![0; words],
            at_risk: vec![0; words],
            dirty: vec![0; bitmap::words_for(words)],
            dirty_list: Vec::with_capacity(words),
            last_cycles: 0,
            last_groups: 0,
            fence_token: 1,
            layout: PackedLayout::with_shape(shape),
            core_cmds: Vec::with_capacity(8 * lanes),
            ring_cmds: Vec::with_capacity(4 * lanes),
            refused: 0,
            last_refusal: None,
            held: Held::new(slots, assets),
        };
        e.clear_card()?;
        e.sync()?;
        Ok(e)
    }

    /// A soft reset keeps the card's memories: a card that served another host still holds its
    /// terms and prices, which the mirror knows nothing of. Empties every group this engine
    /// uses and writes the mirror's (default) prices, ending with a full scan, so card and
    /// mirror start equal.
    fn clear_card(&mut self) -> Result<(), EngineError> {
        self.core_cmds = self.layout.clear_commands();
        self.post_layout()?;
        let assets = self.prices.len();
        for a in 0..assets {
            self.credit()?;
            self.link.post(&Command::BatchTick {
                asset: a as u16,
                price: PriceEntry::default(),
                last: a + 1 == assets,
            })?;
        }
        Ok(())
    }

    /// The link (for statistics and bring-up).
    pub fn link(&self) -> &CardLink {
        &self.link
    }

    /// Where the card holds each group's terms.
    pub fn layout(&self) -> &PackedLayout {
        &self.layout
    }

    /// Accounts kept on the host because the card cannot hold them (more than 16 terms, an
    /// asset as both collateral and debt, or no room for their group).
    pub fn host_held(&self) -> usize {
        self.held.len()
    }

    /// Upserts the card's term memory refused for want of room (kept on the host instead),
    /// and the last such refusal.
    pub fn refused(&self) -> (u64, Option<&LayoutError>) {
        (self.refused, self.last_refusal.as_ref())
    }

    /// Posts the ring commands that carry `core_cmds` (the layout's output), then clears it.
    fn post_layout(&mut self) -> Result<(), EngineError> {
        self.ring_cmds.clear();
        ring_commands(&self.core_cmds, &mut self.ring_cmds);
        self.core_cmds.clear();
        for i in 0..self.ring_cmds.len() {
            self.credit()?;
            self.link.post(&self.ring_cmds[i])?;
        }
        Ok(())
    }

    /// Keeps `slot` on the host: its card words emptied (if the card had it), its terms
    /// scored here.
    fn hold(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        if !self.held.contains(slot) {
            // Whatever the card held in this slot goes; the slot scans as empty there.
            self.layout.remove(slot as usize, &mut self.core_cmds).map_err(layout_error)?;
            self.post_layout()?;
        }
        let (b, a) = self.held.insert(slot, terms, &self.prices);
        self.set_bits(slot as usize, b, a);
        Ok(())
    }

    /// Posts a fence and applies every event until it returns: afterwards every command posted
    /// so far is done and the mirror is current.
    pub fn sync(&mut self) -> Result<(), EngineError> {
        self.fence_token = self.fence_token.wrapping_add(1);
        let token = self.fence_token;
        let (link, mut st) = self.split();
        link.fence(token, |e| st.apply(e))?;
        Ok(())
    }

    fn split(&mut self) -> (&mut CardLink, State<'_>) {
        (
            &mut self.link,
            State {
                breach: &mut self.breach,
                at_risk: &mut self.at_risk,
                dirty: &mut self.dirty,
                dirty_list: &mut self.dirty_list,
                cycles: &mut self.last_cycles,
                groups: &mut self.last_groups,
                held_breach: &self.held.breach,
                held_at_risk: &self.held.at_risk,
                done: None,
            },
        )
    }

    fn credit(&mut self) -> Result<(), EngineError> {
        if self.link.needs_credit() {
            self.link.stats.cmd_ring_waits += 1;
            self.sync()?;
        }
        Ok(())
    }

    fn check_slot(&self, slot: u32) -> Result<(), EngineError> {
        if (slot as usize) < self.slots {
            Ok(())
        } else {
            Err(EngineError::SlotOutOfRange { slot, slots: self.slots })
        }
    }

    fn set_bits(&mut self, slot: usize, b: bool, a: bool) {
        set_mirror(&mut self.breach, &mut self.at_risk, &mut self.dirty, &mut self.dirty_list, slot, b, a);
    }

    /// Rescores the host-held accounts exposed to `asset` (all with `None`) at the mirror prices.
    fn rescore_held(&mut self, asset: Option<u16>) {
        let LinkEngine { held, prices, breach, at_risk, dirty, dirty_list, .. } = self;
        held.rescore(asset, prices, |slot, b, a| {
            set_mirror(breach, at_risk, dirty, dirty_list, slot as usize, b, a)
        });
    }

    fn wait_done(&mut self, seq: u32) -> Result<(), EngineError> {
        let (link, mut st) = self.split();
        loop {
            let e = link.wait("scan done")?;
            st.apply(&e)?;
            if let Some(done) = st.done {
                if done == seq {
                    return Ok(());
                }
                return Err(
                    LinkError::Protocol(format!("scan done for command {done}, waiting for {seq}")).into()
                );
            }
        }
    }
}

impl ScanEngine for LinkEngine {
    fn name(&self) -> &'static str {
        "card"
    }

    fn slots(&self) -> usize {
        self.slots
    }

    fn assets(&self) -> usize {
        self.prices.len()
    }

    /// Inserts or replaces an account (posted; no wait). Terms the card cannot hold but the
    /// software engine takes ([`check_terms_software`]), and accounts whose group finds no room
    /// in the card's term memory, are kept on the host.
    fn upsert(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        self.check_slot(slot)?;
        if check_terms(terms, self.prices.len()).is_err() {
            check_terms_software(terms, self.prices.len())
                .map_err(|source| EngineError::BadTerms { slot, source })?;
            return self.hold(slot, terms);
        }
        match self.layout.upsert(slot as usize, terms, &mut self.core_cmds) {
            Ok(()) => {}
            Err(e @ LayoutError::NoRoom { .. }) => {
                if self.refused == 0 {
                    tracing::warn!("card link: {e}; kept on the host (further refusals are counted)");
                }
                self.refused += 1;
                self.last_refusal = Some(e);
                return self.hold(slot, terms);
            }
            Err(e) => return Err(layout_error(e)),
        }
        self.held.remove(slot);
        self.post_layout()?;
        let (spot, stressed) = reference::health(terms, &self.prices);
        self.set_bits(slot as usize, spot < 0, stressed < 0);
        Ok(())
    }

    /// Empties a slot (posted; no wait).
    fn remove(&mut self, slot: u32) -> Result<(), EngineError> {
        self.check_slot(slot)?;
        if self.held.remove(slot) {
            self.set_bits(slot as usize, false, false);
            return Ok(());
        }
        self.layout.remove(slot as usize, &mut self.core_cmds).map_err(layout_error)?;
        self.post_layout()?;
        self.set_bits(slot as usize, false, false);
        Ok(())
    }

    /// One asset's prices move: the card scans the exposed accounts; returns when its
    /// `ScanDone` arrives, with the bitmap mirror updated.
    #[inline]
    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError> {
        if asset as usize >= self.prices.len() {
            return Err(EngineError::AssetOutOfRange { asset, assets: self.prices.len() });
        }
        self.credit()?;
        let seq = self.link.post(&Command::Tick { asset, price })?;
        self.wait_done(seq)?;
        self.prices[asset as usize] = price;
        self.rescore_held(Some(asset));
        Ok(())
    }

    /// The whole price vector moves: one batch-tick entry per asset, then a full scan.
    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError> {
        if prices.len() != self.prices.len() {
            return Err(EngineError::PriceVectorLength { got: prices.len(), assets: self.prices.len() });
        }
        let mut seq = 0;
        for (a, p) in prices.iter().enumerate() {
            self.credit()?;
            seq = self.link.post(&Command::BatchTick {
                asset: a as u16,
                price: *p,
                last: a + 1 == prices.len(),
            })?;
        }
        if !prices.is_empty() {
            self.wait_done(seq)?;
        }
        self.prices.copy_from_slice(prices);
        self.rescore_held(None);
        Ok(())
    }

    /// The mirror price vector.
    fn prices(&self) -> &[PriceEntry] {
        &self.prices
    }

    /// Breach bitmap (host layout: 64 slots a word).
    #[inline]
    fn breach(&self) -> &[u64] {
        &self.breach
    }

    /// At-risk bitmap.
    #[inline]
    fn at_risk(&self) -> &[u64] {
        &self.at_risk
    }

    /// Appends the indices of changed 64-bit bitmap words since the last call.
    #[inline]
    fn changed_words(&mut self, out: &mut Vec<u32>) {
        for &w in &self.dirty_list {
            bitmap::set(&mut self.dirty, w as usize, false);
        }
        out.extend_from_slice(&self.dirty_list);
        self.dirty_list.clear();
    }

    fn is_card(&self) -> bool {
        true
    }
}

/// A layout refusal other than want of room: a slot or term count the checks before it let
/// through, so a fault of this engine.
fn layout_error(e: LayoutError) -> EngineError {
    LinkError::Layout(e.to_string()).into()
}

fn set_mirror(
    breach: &mut [u64],
    at_risk: &mut [u64],
    dirty: &mut [u64],
    dirty_list: &mut Vec<u32>,
    slot: usize,
    b: bool,
    a: bool,
) {
    let w = slot / 64;
    let (ob, oa) = (breach[w], at_risk[w]);
    bitmap::set(breach, slot, b);
    bitmap::set(at_risk, slot, a);
    if ob != breach[w] || oa != at_risk[w] {
        mark(dirty, dirty_list, w);
    }
}

fn mark(dirty: &mut [u64], list: &mut Vec<u32>, w: usize) {
    if !bitmap::get(dirty, w) {
        bitmap::set(dirty, w, true);
        list.push(w as u32);
    }
}

struct State<'a> {
    breach: &'a mut Vec<u64>,
    at_risk: &'a mut Vec<u64>,
    dirty: &'a mut Vec<u64>,
    dirty_list: &'a mut Vec<u32>,
    cycles: &'a mut u32,
    groups: &'a mut u32,
    /// Bits of host-held accounts, whose card slots are empty: ORed into every card word.
    held_breach: &'a [u64],
    held_at_risk: &'a [u64],
    done: Option<u32>,
}

impl State<'_> {
    /// Writes one 32-bit card word into the 64-bit host mirror.
    #[inline]
    fn put(&mut self, card_word: u32, b: u32, a: u32) -> Result<(), LinkError> {
        let w = card_word as usize / 2;
        if w >= self.breach.len() {
            return Err(LinkError::Protocol(format!("bitmap word {card_word} is beyond the book")));
        }
        let shift = 32 * (card_word % 2);
        let mask = !(0xFFFF_FFFFu64 << shift);
        let nb = (self.breach[w] & mask) | (b as u64) << shift | (self.held_breach[w] & !mask);
        let na = (self.at_risk[w] & mask) | (a as u64) << shift | (self.held_at_risk[w] & !mask);
        if nb != self.breach[w] || na != self.at_risk[w] {
            self.breach[w] = nb;
            self.at_risk[w] = na;
            mark(self.dirty, self.dirty_list, w);
        }
        Ok(())
    }

    fn apply(&mut self, e: &EventEntry) -> Result<(), LinkError> {
        match e.event {
            Event::ChangedWords { count, words, .. } => {
                for &(w, b, a) in &words[..count as usize] {
                    self.put(w, b, a)?;
                }
            }
            Event::Bitmap { base_word, count, breach, at_risk, .. } => {
                for k in 0..count as usize {
                    self.put(base_word + k as u32, breach[k], at_risk[k])?;
                }
            }
            Event::ScanDone { cmd_seq, cycles, groups, .. } => {
                *self.cycles = cycles;
                *self.groups = groups;
                self.done = Some(cmd_seq);
            }
            Event::Error { cmd_seq, errors, detail } => {
                return Err(LinkError::Protocol(format!(
                    "card refused command {cmd_seq}: error bits {errors:#x}, detail {detail}"
                )));
            }
            Event::Stats { .. } | Event::FenceDone { .. } => {}
        }
        Ok(())
    }
}
