//! CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) of journal frames, on `crc32fast`.
//!
//! The same checksum as zlib, gzip and PNG, so a record can be checked with common tools.
//! `crc32fast` computes exactly this CRC (CRC-32/ISO-HDLC) with SIMD where the CPU has it;
//! the file format did not change when the byte-at-a-time table walk was replaced by it, and
//! the tests below pin the values the old code wrote.

/// A running CRC-32: feed it byte slices with [`update`](Crc32::update), read it with
/// [`finish`](Crc32::finish).
#[derive(Clone, Debug, Default)]
pub struct Crc32(crc32fast::Hasher);

impl Crc32 {
    /// A fresh checksum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The checksum of everything fed so far.
    pub fn finish(self) -> u32 {
        self.0.finalize()
    }
}

/// CRC-32 of one slice.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"The quick brown fox jumps over the lazy dog"), 0x414F_A339);
    }

    #[test]
    fn incremental_equals_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut c = Crc32::new();
        for part in data.chunks(37) {
            c.update(part);
        }
        assert_eq!(c.finish(), crc32(&data));
    }

    /// The byte-at-a-time table walk the journal used before `crc32fast`, kept as the oracle
    /// that files written by it still verify.
    fn table_walk(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            let mut x = (c ^ b as u32) & 0xFF;
            for _ in 0..8 {
                x = if x & 1 != 0 { 0xEDB8_8320 ^ (x >> 1) } else { x >> 1 };
            }
            c = x ^ (c >> 8);
        }
        !c
    }

    proptest::proptest! {
        #[test]
        fn same_checksum_as_the_old_table_walk(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600), cut in 0usize..600) {
            let cut = cut.min(data.len());
            let mut c = Crc32::new();
            c.update(&data[..cut]);
            c.update(&data[cut..]);
            proptest::prop_assert_eq!(c.finish(), table_walk(&data));
        }
    }
}
