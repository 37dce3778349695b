//! After a restart the guard is seeded from the journal's last ticks: the first feed update is
//! checked against the last price the keeper applied, not accepted blindly.

use liqscan_hdl::abi::{PriceEntry, QuotedPrice};
use liqscan_host::guard::{GuardConfig, OracleGuard, Verdict};
use liqscan_host::journal::keeper::{BookJournal, seed_guard};
use liqscan_host::journal::{FsyncPolicy, JournalConfig};
use liqscan_host::pipeline::FeedMsg;

fn tick(asset: u16, p: u32) -> FeedMsg {
    let q = QuotedPrice { asset: p, liability: p };
    FeedMsg::Tick { asset, price: PriceEntry { spot: q, stressed: q } }
}

#[test]
fn guard_seeded_from_recovered_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = JournalConfig { fsync: FsyncPolicy::Never, segment_bytes: 1 << 20, snapshot_every: None };
    {
        let (mut bj, _) = BookJournal::open(dir.path(), 4, 3, cfg.clone()).unwrap();
        bj.record(&tick(0, 1000), 10).unwrap();
        bj.record(&tick(1, 50), 11).unwrap();
        bj.record(&tick(0, 1010), 20).unwrap();
        bj.record(&FeedMsg::Remove { slot: 9 }, 21).unwrap(); // refused by the state: a Param
        assert_eq!((bj.messages(), bj.refused), (4, 1));
    } // dropped as a crash would leave it (the mapping is the file)
    let (bj, rec) = BookJournal::open(dir.path(), 4, 3, cfg).unwrap();
    assert_eq!((rec.last_seq, bj.messages()), (4, 4));
    assert_eq!(bj.reload_messages(), vec![tick(0, 1010), tick(1, 50)]);
    let mut g = OracleGuard::new(GuardConfig::uniform(3, None, 500));
    assert_eq!(seed_guard(bj.state(), &mut g), 2);
    assert_eq!(g.last(0), Some((20, 1010.0)));
    // Older than the last applied: refused; a 50% jump: held; within 5%: accepted; asset 2
    // had no tick: its first update is accepted.
    assert!(matches!(g.check(0, 15, 1000.0, 0, 0), Verdict::Refused(_)));
    assert!(matches!(g.check(1, 30, 75.0, 0, 0), Verdict::Held(_)));
    assert_eq!(g.check(0, 30, 1020.0, 0, 0), Verdict::Accept(1020.0));
    assert_eq!(g.check(2, 30, 7.0, 0, 0), Verdict::Accept(7.0));
    // Unseeded, the same jump would have been accepted.
    let mut fresh = OracleGuard::new(GuardConfig::uniform(3, None, 500));
    assert_eq!(fresh.check(1, 30, 75.0, 0, 0), Verdict::Accept(75.0));
}
