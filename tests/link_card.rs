//! The card link against the emulated card thread, over file-backed BAR/buffer and /dev/shm.
//!
//! ```text
//!  LinkEngine ──CardLink──> [BAR file | /dev/shm] <── CardThread (SoftwareCard)
//!       │ bitmaps                                          
//!       └── compared with reference::scan after every random command
//! ```

use std::path::PathBuf;
use std::time::Duration;

use liqscan_hdl::abi::regs::{TYPE_LIQSCAN, offset};
use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::ScanEngine;
use liqscan_host::link::{BAR_BYTES, CardLink, LinkEngine, LinkError, LinkMemory, LinkOptions};
use liqscan_host::reference;
use liqscan_sim::card::{CardThread, ServeOptions, SoftwareCard};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ASSETS: usize = 6;

fn price(rng: &mut ChaCha8Rng) -> PriceEntry {
    let s = rng.gen_range(50..150u32);
    let st = rng.gen_range(30..=s);
    PriceEntry {
        spot: QuotedPrice { asset: s, liability: s + 1 },
        stressed: QuotedPrice { asset: st, liability: s + (s - st) + 1 },
    }
}

fn terms(rng: &mut ChaCha8Rng) -> Vec<Coeff> {
    let n = rng.gen_range(0..=ASSETS);
    let mut assets: Vec<u16> = (0..ASSETS as u16).collect();
    for i in 0..n {
        let j = rng.gen_range(i..ASSETS);
        assets.swap(i, j);
    }
    assets[..n].iter().map(|&asset| Coeff { asset, coeff: rng.gen_range(-1000..1000) }).collect()
}

/// Assets of the book whose accounts the card cannot all hold.
const WIDE_ASSETS: usize = 40;

/// Terms of every shape the software engine takes: card-sized ones, accounts with two legs of
/// one asset (a positive and a negative term), and accounts of 17 to 64 terms.
fn wide_terms(rng: &mut ChaCha8Rng) -> Vec<Coeff> {
    let mut assets: Vec<u16> = (0..WIDE_ASSETS as u16).collect();
    for i in 0..WIDE_ASSETS {
        let j = rng.gen_range(i..WIDE_ASSETS);
        assets.swap(i, j);
    }
    let (n, legs) = match rng.gen_range(0..4) {
        0 => (rng.gen_range(0..=6), 0),
        1 => (rng.gen_range(1..=6), rng.gen_range(1..=3)),
        2 => (rng.gen_range(17..=WIDE_ASSETS), 0),
        _ => (WIDE_ASSETS, 64 - WIDE_ASSETS),
    };
    let mut t: Vec<Coeff> =
        assets[..n].iter().map(|&asset| Coeff { asset, coeff: rng.gen_range(1..1000) }).collect();
    for (k, c) in t.iter_mut().enumerate() {
        if k >= legs && rng.gen_bool(0.5) {
            c.coeff = -c.coeff;
        }
    }
    // The first `legs` assets (positive above) also get a negative leg.
    for k in 0..legs.min(n) {
        t.push(Coeff { asset: t[k].asset, coeff: -rng.gen_range(1..1200) });
    }
    t
}

/// Random upserts, removes, ticks and batch ticks; bitmaps checked against the reference.
fn drive(mem: LinkMemory, slots: usize, seed: u64) {
    drive_book(mem, slots, ASSETS, seed, terms);
}

/// [`drive`] over `assets` assets with accounts from `gen`.
fn drive_book(
    mem: LinkMemory,
    slots: usize,
    assets: usize,
    seed: u64,
    make_terms: fn(&mut ChaCha8Rng) -> Vec<Coeff>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let link = CardLink::open(mem, LinkOptions { cmd_entries: 64, ..Default::default() }).expect("link up");
    link.scratch_test().expect("scratch");
    let mut e = LinkEngine::new(link, slots, assets).expect("engine");
    let mut book: Vec<Vec<Coeff>> = vec![Vec::new(); slots];
    let mut prices = vec![PriceEntry::default(); assets];
    let mut changed = Vec::new();
    for step in 0..600 {
        match rng.gen_range(0..10) {
            0..=3 => {
                let s = rng.gen_range(0..slots);
                book[s] = make_terms(&mut rng);
                e.upsert(s as u32, &book[s]).unwrap();
            }
            4 => {
                let s = rng.gen_range(0..slots);
                book[s].clear();
                e.remove(s as u32).unwrap();
            }
            5 => {
                for p in prices.iter_mut() {
                    *p = price(&mut rng);
                }
                e.batch_tick(&prices).unwrap();
            }
            _ => {
                let a = rng.gen_range(0..assets);
                prices[a] = price(&mut rng);
                e.tick(a as u16, prices[a]).unwrap();
            }
        }
        let want = reference::scan(&book, &prices);
        assert_eq!(e.breach(), &want.breach[..], "breach after step {step}");
        assert_eq!(e.at_risk(), &want.at_risk[..], "at-risk after step {step}");
        changed.clear();
        e.changed_words(&mut changed);
    }
    // A burst of upserts fills the 64-entry command ring: the host must wait for credit.
    for (s, t) in book.iter_mut().enumerate() {
        *t = make_terms(&mut rng);
        e.upsert(s as u32, t).unwrap();
    }
    // The card saw the commands: a full resync matches too.
    e.batch_tick(&prices).unwrap();
    assert_eq!(e.breach(), &reference::scan(&book, &prices).breach[..]);
    assert!(e.link().stats.cmd_ring_waits > 0, "64-entry ring should have needed credit");
}

#[test]
fn file_backed_bar_and_buffer_against_the_emulated_card() {
    let dir = tempfile::tempdir().unwrap();
    let (bar, dma) = (dir.path().join("resource0"), dir.path().join("dmabuf"));
    let card_mem = LinkMemory::pcie(&bar, Some(BAR_BYTES), &dma, 256 * 64, 0, true).unwrap();
    let card =
        CardThread::spawn(card_mem, Box::new(SoftwareCard::new(300, ASSETS)), ServeOptions::default(), None);
    // The host maps the same files as a BAR (length from the file) and a buffer.
    let host_mem = LinkMemory::pcie(&bar, None, &dma, 256 * 64, 0, false).unwrap();
    drive(host_mem.clone(), 300, 1);
    assert_eq!(host_mem.bar.read32(offset::ID_TYPE as usize).unwrap(), TYPE_LIQSCAN);
    let rep = card.stop();
    assert!(rep.commands > 600 && rep.resets == 1, "{rep:?}");
}

#[test]
fn shared_memory_against_the_emulated_card() {
    let path = PathBuf::from(format!("/dev/shm/liqscan-test-{}", std::process::id()));
    let dir;
    let path = if std::path::Path::new("/dev/shm").is_dir() {
        path
    } else {
        dir = tempfile::tempdir().unwrap();
        dir.path().join("shm")
    };
    let card_mem = LinkMemory::shm_create(&path, 512).unwrap();
    let card =
        CardThread::spawn(card_mem, Box::new(SoftwareCard::new(200, ASSETS)), ServeOptions::default(), None);
    let host = LinkMemory::shm_open(&path).unwrap();
    assert_eq!(host.evt_entries(), 512);
    drive(host, 200, 2);
    drop(card);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn register_access_is_bounds_and_alignment_checked() {
    let dir = tempfile::tempdir().unwrap();
    let m =
        LinkMemory::pcie(&dir.path().join("b"), Some(BAR_BYTES), &dir.path().join("d"), 128 * 64, 0, true)
            .unwrap();
    assert!(matches!(m.bar.read32(BAR_BYTES), Err(LinkError::OutOfRange { .. })));
    assert!(matches!(m.bar.write32(0x13, 1), Err(LinkError::Misaligned { .. })));
    assert!(m.bar.write32(BAR_BYTES - 4, 1).is_ok());
    // Too small a BAR, a ring that is not a power of two, a missing card: refused clearly.
    assert!(
        LinkMemory::pcie(&dir.path().join("s"), Some(4096), &dir.path().join("d"), 128 * 64, 0, true)
            .is_err()
    );
    assert!(
        LinkMemory::pcie(&dir.path().join("b"), None, &dir.path().join("d2"), 100 * 64, 0, true).is_err()
    );
    let opts = LinkOptions { open_timeout: Duration::from_millis(30), ..Default::default() };
    match CardLink::open(m, opts) {
        Err(LinkError::NotACard { found: 0, expected }) => assert_eq!(expected, TYPE_LIQSCAN),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("opened a link with no card"),
    }
}

#[test]
fn a_book_larger_than_the_card_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let card = CardThread::spawn(
        LinkMemory::shm_create(&path, 256).unwrap(),
        Box::new(SoftwareCard::new(64, ASSETS)),
        ServeOptions::default(),
        None,
    );
    let link = CardLink::open(LinkMemory::shm_open(&path).unwrap(), LinkOptions::default()).unwrap();
    assert!(LinkEngine::new(link, 65, ASSETS).is_err());
    drop(card);
}

#[test]
fn accounts_the_card_cannot_hold_are_kept_on_the_host_with_identical_bitmaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let card_mem = LinkMemory::shm_create(&path, 512).unwrap();
    let card = CardThread::spawn(
        card_mem,
        Box::new(SoftwareCard::new(150, WIDE_ASSETS)),
        ServeOptions::default(),
        None,
    );
    drive_book(LinkMemory::shm_open(&path).unwrap(), 150, WIDE_ASSETS, 3, wide_terms);
    // Moving an account between the card and the host, both ways, and refusing what neither takes.
    let link = CardLink::open(LinkMemory::shm_open(&path).unwrap(), LinkOptions::default()).unwrap();
    let mut e = LinkEngine::new(link, 150, WIDE_ASSETS).unwrap();
    let p = |s: u32| PriceEntry {
        spot: QuotedPrice { asset: s, liability: s },
        stressed: QuotedPrice { asset: s, liability: s },
    };
    e.batch_tick(&vec![p(100); WIDE_ASSETS]).unwrap();
    let c = |asset: u16, coeff: i32| Coeff { asset, coeff };
    // Netted, 10 - 9 = +1 would be safe; as two legs at its own prices it is what the terms say.
    e.upsert(7, &[c(0, 10), c(0, -11)]).unwrap();
    assert_eq!(e.host_held(), 1);
    assert!(liqscan_host::bitmap::get(e.breach(), 7));
    e.upsert(7, &[c(0, 10)]).unwrap();
    assert_eq!(e.host_held(), 0);
    e.tick(0, p(90)).unwrap();
    assert!(!liqscan_host::bitmap::get(e.breach(), 7));
    e.upsert(7, &(0..20).map(|a| c(a, -1)).collect::<Vec<_>>()).unwrap();
    e.tick(1, p(80)).unwrap();
    assert!(liqscan_host::bitmap::get(e.breach(), 7));
    e.remove(7).unwrap();
    assert_eq!((e.host_held(), liqscan_host::bitmap::get(e.breach(), 7)), (0, false));
    assert!(e.upsert(8, &[c(1, 5), c(1, 6)]).is_err(), "two positive legs of one asset");
    assert!(
        e.upsert(8, &(0..65).map(|k| c(k % 40, if k < 40 { 1 } else { -1 })).collect::<Vec<_>>()).is_err()
    );
    drop(card);
}

/// A card keeps its memories (prices, terms) across the soft reset of a new link. A second
/// host on a card that served one must still see exactly the reference: the engine clears what
/// the first host left before it takes any account. (Before it did, a second `liqscan run` on
/// one `liqscan card` gave a wrong digest with no fail-over.)
#[test]
fn a_second_host_on_a_card_that_served_one_starts_from_a_clean_card() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let card = CardThread::spawn(
        LinkMemory::shm_create(&path, 256).unwrap(),
        Box::new(SoftwareCard::new(200, ASSETS)),
        ServeOptions::default(),
        None,
    );
    drive(LinkMemory::shm_open(&path).unwrap(), 200, 3);
    drive(LinkMemory::shm_open(&path).unwrap(), 200, 4);
    // Fewer slots the second time: the slots beyond them are not scanned.
    drive(LinkMemory::shm_open(&path).unwrap(), 96, 5);
    let rep = card.stop();
    assert_eq!(rep.resets, 3, "{rep:?}");
}
