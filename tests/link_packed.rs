//! The host's packed placement through the ring, at the card's full size: `LinkEngine` places
//! every account with `PackedLayout` (term writes at (account, word), `SetGroup` after a group's
//! new words) and posts them into the command ring; the emulated card (`serve()` with
//! `HdlCard::golden`: the card's checks and the scan core's golden model, so books of 8,192
//! accounts run in seconds) answers; the software engine gets the same messages.
//!
//! ```text
//!  LinkEngine ──ring──> /dev/shm <── CardThread (HdlCard::golden: CoreModel, 16 lanes, 2,048 words)
//!  SoftwareEngine (same messages)
//!       └── breach and at-risk bitmaps compared after every tick
//! ```
//!
//! Random books of 1 to 4 terms (a few up to 16) and random upserts that grow, shrink and
//! remove accounts: growing groups extend inside their blocks or move; a group that finds no
//! room stays on the host (counted in `LinkEngine::refused`), and the bitmaps stay equal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use liqscan_hdl::abi::config::{CARD_ACCOUNTS, LANES, TERM_WORDS};
use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::{ScanEngine, SoftwareEngine};
use liqscan_host::link::{CardLink, LinkEngine, LinkMemory, LinkOptions};
use liqscan_sim::card::{CardThread, HdlCard, ServeOptions};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Card {
    _thread: CardThread,
    path: PathBuf,
}

impl Drop for Card {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn open(tag: &str, slots: usize, assets: usize) -> (Card, LinkEngine) {
    let path = if Path::new("/dev/shm").is_dir() {
        PathBuf::from(format!("/dev/shm/liqscan-test-packed-{tag}-{}", std::process::id()))
    } else {
        std::env::temp_dir().join(format!("liqscan-test-packed-{tag}-{}", std::process::id()))
    };
    let thread = CardThread::spawn(
        LinkMemory::shm_create(&path, 1024).unwrap(),
        Box::new(HdlCard::golden(assets).unwrap()),
        ServeOptions::default(),
        None,
    );
    let opts = LinkOptions { timeout: Duration::from_secs(30), backoff: true, ..Default::default() };
    let link = CardLink::open(LinkMemory::shm_open(&path).unwrap(), opts).unwrap();
    let engine = LinkEngine::new(link, slots, assets).unwrap();
    (Card { _thread: thread, path }, engine)
}

/// `n` terms on distinct assets (the card holds no asset twice), coefficients of either sign.
fn terms(rng: &mut ChaCha8Rng, assets: usize, n: usize) -> Vec<Coeff> {
    let mut pick: Vec<u16> = (0..assets as u16).collect();
    pick.shuffle(rng);
    pick[..n]
        .iter()
        .map(|&asset| {
            let coeff =
                if rng.gen_range(0..3) == 0 { -rng.gen_range(1..4000) } else { rng.gen_range(1..6000) };
            Coeff { asset, coeff }
        })
        .collect()
}

fn price(rng: &mut ChaCha8Rng) -> PriceEntry {
    let mut q = || {
        let a = rng.gen_range(200..1400u32);
        QuotedPrice { asset: a, liability: a + rng.gen_range(0..150) }
    };
    PriceEntry { spot: q(), stressed: q() }
}

fn same(card: &LinkEngine, sw: &SoftwareEngine, what: &str) {
    assert_eq!(card.breach(), sw.breach(), "breach bitmap {what}");
    assert_eq!(card.at_risk(), sw.at_risk(), "at-risk bitmap {what}");
}

/// Ticks, upserts of `0..=max` terms (one in `big` up to 16) and removals, `steps` of them;
/// bitmaps compared after every tick. Returns (ticks, groups moved).
#[allow(clippy::too_many_arguments)]
fn churn(
    rng: &mut ChaCha8Rng,
    card: &mut LinkEngine,
    sw: &mut SoftwareEngine,
    n: usize,
    assets: usize,
    steps: usize,
    max: usize,
    big: u32,
) -> (usize, usize) {
    let (mut ticks, mut moves) = (0, 0);
    for step in 0..steps {
        match rng.gen_range(0..10) {
            0..=5 => {
                let (asset, p) = (rng.gen_range(0..assets) as u16, price(rng));
                card.tick(asset, p).unwrap();
                sw.tick(asset, p).unwrap();
                same(card, sw, &format!("after tick at step {step}"));
                ticks += 1;
            }
            6 => {
                let a = rng.gen_range(0..n) as u32;
                card.remove(a).unwrap();
                sw.remove(a).unwrap();
            }
            _ => {
                let a = rng.gen_range(0..n);
                let top = if rng.gen_range(0..big) == 0 { 16 } else { max };
                let k = rng.gen_range(0..=top);
                let t = terms(rng, assets, k);
                let before = card.layout().extent(a / LANES);
                card.upsert(a as u32, &t).unwrap();
                sw.upsert(a as u32, &t).unwrap();
                let after = card.layout().extent(a / LANES);
                moves += (before.len > 0 && after.first != before.first) as usize;
            }
        }
    }
    (ticks, moves)
}

#[test]
fn book_of_8192_accounts_of_four_terms_goes_through_the_ring_and_stays_equal() {
    let mut rng = ChaCha8Rng::seed_from_u64(81);
    let (n, assets) = (CARD_ACCOUNTS, 24);
    let (_card, mut card) = open("full", n, assets);
    let mut sw = SoftwareEngine::new(n, assets);
    for a in 0..n {
        let k = rng.gen_range(1..=4);
        let t = terms(&mut rng, assets, k);
        card.upsert(a as u32, &t).unwrap();
        sw.upsert(a as u32, &t).unwrap();
    }
    card.sync().unwrap();
    let posted = card.link().stats.commands;
    eprintln!(
        "8,192 accounts of 1-4 terms: {posted} ring commands from open to loaded, {} term words walked a lane",
        card.layout().words_used()
    );
    // Every account is on the card: one block of 4 words a group fills the 2,048 words.
    assert_eq!(card.host_held(), 0);
    assert_eq!(card.refused().0, 0);
    assert_eq!(card.layout().words_reserved(), TERM_WORDS);
    let prices: Vec<PriceEntry> = (0..assets).map(|_| price(&mut rng)).collect();
    card.batch_tick(&prices).unwrap();
    sw.batch_tick(&prices).unwrap();
    same(&card, &sw, "after the batch tick");
    assert!(card.breach().iter().any(|w| *w != 0) && card.breach().iter().any(|w| *w != !0));
    // Shrinks and grows within 4 terms stay in their blocks; the few of up to 16 find the
    // memory full and stay on the host.
    let (ticks, moves) = churn(&mut rng, &mut card, &mut sw, n, assets, 500, 4, 8);
    card.sync().unwrap();
    assert!(ticks > 200, "{ticks} ticks");
    assert_eq!(moves, 0, "a full memory has no free blocks to move to");
    let (refused, last) = card.refused();
    assert!(refused > 0 && card.host_held() > 0, "{refused} refused, {} held", card.host_held());
    let msg = last.unwrap().to_string();
    assert!(msg.contains("consecutive free term words"), "{msg}");
    let (asset, p) = (3, price(&mut rng));
    card.tick(asset, p).unwrap();
    sw.tick(asset, p).unwrap();
    same(&card, &sw, "at the end");
}

#[test]
fn random_books_grow_shrink_and_move_groups_with_bitmaps_equal_after_every_tick() {
    let mut rng = ChaCha8Rng::seed_from_u64(82);
    let (mut total_moves, mut total_ticks, mut total_refused) = (0, 0, 0);
    for round in 0..4 {
        let n = [300, 2500, 6000, CARD_ACCOUNTS][round];
        let assets = rng.gen_range(16..=40);
        let (_card, mut card) = open(&format!("r{round}"), n, assets);
        let mut sw = SoftwareEngine::new(n, assets);
        let prices: Vec<PriceEntry> = (0..assets).map(|_| price(&mut rng)).collect();
        card.batch_tick(&prices).unwrap();
        sw.batch_tick(&prices).unwrap();
        // Accounts arrive in a random order, so groups grow one member at a time.
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        for &a in &order {
            let top = if rng.gen_range(0..50) == 0 { 16 } else { 4 };
            let k = rng.gen_range(1..=top);
            let t = terms(&mut rng, assets, k);
            card.upsert(a as u32, &t).unwrap();
            sw.upsert(a as u32, &t).unwrap();
        }
        let (ticks, moves) = churn(&mut rng, &mut card, &mut sw, n, assets, 400, 6, 12);
        card.sync().unwrap();
        total_moves += moves;
        total_ticks += ticks;
        total_refused += card.refused().0;
        assert!(card.layout().words_reserved() <= TERM_WORDS);
    }
    assert!(total_ticks > 600 && total_moves > 20, "{total_ticks} ticks, {total_moves} moves");
    assert!(total_refused > 0, "the 8,192-account round fills the memory");
}
