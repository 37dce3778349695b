//! Admission of TCP feed connections: who may hold one of the listener's slots.
//!
//! ```text
//!  accept ──> waiting room (bounded; the oldest is pushed out when full; closed at the
//!             │              first-frame deadline)
//!             │ first complete frame (authenticated when a secret is set)
//!             v
//!            slot (at most `slots` in all, `per_address` per peer address; closed after
//!                  `idle` without a complete frame)
//! ```
//!
//! A connection holds a slot only once it has sent a complete frame (with a shared secret: one
//! whose tag verifies), so connections that send nothing, or trickle bytes that never make a
//! frame, cannot keep a real feeder out: they wait in a bounded room, pushed out by newer
//! arrivals and closed at a deadline. The bookkeeping here is plain data; the listener does the
//! I/O (`listen.rs`), and takes this lock per connection event, never per frame.

use std::net::IpAddr;
use std::time::Instant;

/// Why a connection was not given a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is held.
    Full {
        /// Slots in all.
        slots: usize,
    },
    /// It was pushed out of the waiting room (it is being closed).
    PushedOut,
    /// Its address holds its share already.
    AddressShare {
        /// Slots one address may hold.
        per_address: usize,
    },
}

struct Entry<C> {
    id: u64,
    ip: IpAddr,
    arrived: Instant,
    /// Holds a slot.
    admitted: bool,
    /// The handle to close it by, while it waits (taken when it is pushed out).
    handle: Option<C>,
}

/// The slots and waiting room of one listener. `C` is what closes a waiting connection from
/// outside (a clone of its socket).
pub struct Admission<C> {
    slots: usize,
    per_address: usize,
    waiting: usize,
    next_id: u64,
    conns: Vec<Entry<C>>,
}

impl<C> Admission<C> {
    /// `slots` in all, `per_address` of them per peer address, `waiting` connections at most
    /// in the waiting room (each at least 1).
    pub fn new(slots: usize, per_address: usize, waiting: usize) -> Self {
        Admission {
            slots: slots.max(1),
            per_address: per_address.max(1),
            waiting: waiting.max(1),
            next_id: 0,
            conns: Vec::new(),
        }
    }

    /// A new connection from `ip` enters the waiting room; returns its id and, when the room
    /// was full, the handle of the oldest waiting connection, pushed out (the caller closes it).
    pub fn arrive(&mut self, ip: IpAddr, handle: C, now: Instant) -> (u64, Option<C>) {
        let waiting = self.conns.iter().filter(|c| !c.admitted && c.handle.is_some()).count();
        let out = if waiting >= self.waiting {
            self.conns
                .iter_mut()
                .filter(|c| !c.admitted && c.handle.is_some())
                .min_by_key(|c| c.arrived)
                .and_then(|c| c.handle.take())
        } else {
            None
        };
        self.next_id += 1;
        let id = self.next_id;
        self.conns.push(Entry { id, ip, arrived: now, admitted: false, handle: Some(handle) });
        (id, out)
    }

    /// Gives connection `id` a slot (after its first complete, authenticated frame), or says
    /// why not. Admitting an admitted connection is a no-op.
    pub fn admit(&mut self, id: u64) -> Result<(), Refusal> {
        let Some(i) = self.conns.iter().position(|c| c.id == id) else {
            return Err(Refusal::Full { slots: self.slots });
        };
        if self.conns[i].admitted {
            return Ok(());
        }
        if self.conns[i].handle.is_none() {
            return Err(Refusal::PushedOut);
        }
        let ip = self.conns[i].ip;
        let held = self.conns.iter().filter(|c| c.admitted).count();
        if held >= self.slots {
            return Err(Refusal::Full { slots: self.slots });
        }
        if self.conns.iter().filter(|c| c.admitted && c.ip == ip).count() >= self.per_address {
            return Err(Refusal::AddressShare { per_address: self.per_address });
        }
        let c = &mut self.conns[i];
        c.admitted = true;
        c.handle = None; // an admitted connection is never pushed out
        Ok(())
    }

    /// Connection `id` closed (whatever the reason): its slot or place is free. True when it
    /// had been pushed out of the waiting room.
    pub fn leave(&mut self, id: u64) -> bool {
        let pushed_out = self.conns.iter().any(|c| c.id == id && !c.admitted && c.handle.is_none());
        self.conns.retain(|c| c.id != id);
        pushed_out
    }

    /// Slots held.
    pub fn held(&self) -> usize {
        self.conns.iter().filter(|c| c.admitted).count()
    }

    /// Connections waiting for their first frame (not pushed out).
    pub fn waiting(&self) -> usize {
        self.conns.iter().filter(|c| !c.admitted && c.handle.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn slots_are_held_only_after_a_first_frame_and_shared_per_address() {
        let t = Instant::now();
        let mut a: Admission<u32> = Admission::new(3, 2, 2);
        // Two idle connections fill the waiting room; a third pushes the oldest out.
        let (i1, out) = a.arrive(ip(1), 1, t);
        assert_eq!(out, None);
        let (i2, _) = a.arrive(ip(1), 2, t + std::time::Duration::from_millis(1));
        let (i3, out) = a.arrive(ip(1), 3, t + std::time::Duration::from_millis(2));
        assert_eq!(out, Some(1), "the oldest waiting connection is pushed out");
        assert_eq!((a.held(), a.waiting()), (0, 2));
        // First frames: two from one address take its share, the third is refused.
        a.admit(i2).unwrap();
        a.admit(i3).unwrap();
        let (i4, _) = a.arrive(ip(1), 4, t);
        assert_eq!(a.admit(i4), Err(Refusal::AddressShare { per_address: 2 }));
        // Another address gets the last slot; then the listener is full.
        let (i5, _) = a.arrive(ip(2), 5, t);
        a.admit(i5).unwrap();
        let (i6, _) = a.arrive(ip(3), 6, t);
        assert_eq!(a.admit(i6), Err(Refusal::Full { slots: 3 }));
        // Admitted connections are never pushed out by arrivals.
        for k in 0..5 {
            let (_, out) = a.arrive(ip(9), 10 + k, t);
            assert!(out.is_none_or(|h| h >= 4), "pushed out {out:?}");
        }
        assert_eq!(a.held(), 3);
        // A closed connection frees its slot.
        assert!(!a.leave(i2));
        assert_eq!(a.admit(i6), Err(Refusal::PushedOut), "pushed out by the arrivals above");
        let (i7, _) = a.arrive(ip(3), 7, t + std::time::Duration::from_secs(1));
        a.admit(i7).unwrap();
        assert_eq!(a.held(), 3);
        assert_eq!(a.admit(i1), Err(Refusal::PushedOut));
        assert!(a.leave(i1), "it had been pushed out");
    }
}
