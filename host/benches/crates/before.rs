//! The hand-written code that `crc32fast` and RustCrypto's `hmac` + `sha2` replaced, kept here
//! only as the "before" side of the benchmark (the shipped code no longer has it).

/// CRC-32/ISO-HDLC, table-driven, one byte at a time (the old `journal/crc.rs`).
pub mod crc {
    const POLY: u32 = 0xEDB8_8320;

    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { POLY ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };

    #[derive(Clone, Copy)]
    pub struct Crc32(u32);

    impl Crc32 {
        pub fn new() -> Self {
            Crc32(!0)
        }
        pub fn update(&mut self, bytes: &[u8]) {
            let mut c = self.0;
            for &b in bytes {
                c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
            }
            self.0 = c;
        }
        pub fn finish(self) -> u32 {
            !self.0
        }
    }

    /// The old `journal::frame::encode`.
    pub fn encode(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
        let len = payload.len() as u32;
        let mut crc = Crc32::new();
        crc.update(&len.to_le_bytes());
        crc.update(&seq.to_le_bytes());
        crc.update(payload);
        out.extend_from_slice(&u32::from_le_bytes(*b"LQJR").to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&crc.finish().to_le_bytes());
        out.extend_from_slice(payload);
    }
}

/// SHA-256 (FIPS 180-4) and HMAC-SHA256 as the old `feed/auth.rs` wrote them.
pub mod hmac {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];

    const H0: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    #[derive(Clone)]
    pub struct Sha256 {
        h: [u32; 8],
        buf: [u8; 64],
        have: usize,
        len: u64,
    }

    impl Sha256 {
        fn new() -> Self {
            Sha256 { h: H0, buf: [0; 64], have: 0, len: 0 }
        }

        fn block(h: &mut [u32; 8], b: &[u8]) {
            let mut w = [0u32; 64];
            for (i, c) in b.chunks_exact(4).enumerate() {
                w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
            }
            let [mut a, mut b_, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
            for i in 0..64 {
                let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
                let ch = (e & f) ^ (!e & g);
                let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
                let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
                let maj = (a & b_) ^ (a & c) ^ (b_ & c);
                let t2 = s0.wrapping_add(maj);
                hh = g;
                g = f;
                f = e;
                e = d.wrapping_add(t1);
                d = c;
                c = b_;
                b_ = a;
                a = t1.wrapping_add(t2);
            }
            for (x, y) in h.iter_mut().zip([a, b_, c, d, e, f, g, hh]) {
                *x = x.wrapping_add(y);
            }
        }

        fn update(&mut self, mut data: &[u8]) {
            self.len += data.len() as u64;
            if self.have > 0 {
                let n = (64 - self.have).min(data.len());
                self.buf[self.have..self.have + n].copy_from_slice(&data[..n]);
                self.have += n;
                data = &data[n..];
                if self.have < 64 {
                    return;
                }
                let buf = self.buf;
                Self::block(&mut self.h, &buf);
                self.have = 0;
            }
            let mut chunks = data.chunks_exact(64);
            for c in &mut chunks {
                Self::block(&mut self.h, c);
            }
            let rest = chunks.remainder();
            self.buf[..rest.len()].copy_from_slice(rest);
            self.have = rest.len();
        }

        fn finish(mut self) -> [u8; 32] {
            let bits = self.len.wrapping_mul(8);
            self.update(&[0x80]);
            while self.have != 56 {
                self.update(&[0]);
            }
            self.update(&bits.to_be_bytes());
            let mut out = [0u8; 32];
            for (o, v) in out.chunks_exact_mut(4).zip(self.h) {
                o.copy_from_slice(&v.to_be_bytes());
            }
            out
        }
    }

    #[derive(Clone)]
    pub struct HmacKey {
        inner: Sha256,
        outer: Sha256,
    }

    impl HmacKey {
        /// Keys up to the 64-byte block (all the bench uses).
        pub fn new(secret: &[u8]) -> Self {
            let mut k = [0u8; 64];
            k[..secret.len()].copy_from_slice(secret);
            let (mut inner, mut outer) = (Sha256::new(), Sha256::new());
            inner.update(&k.map(|b| b ^ 0x36));
            outer.update(&k.map(|b| b ^ 0x5c));
            HmacKey { inner, outer }
        }

        pub fn tag(&self, msg: &[u8]) -> [u8; 32] {
            let mut i = self.inner.clone();
            i.update(msg);
            let mut o = self.outer.clone();
            o.update(&i.finish());
            o.finish()
        }

        pub fn verify(&self, msg: &[u8], tag: &[u8]) -> bool {
            let t = self.tag(msg);
            if t.len() != tag.len() {
                return false;
            }
            let mut d = 0u8;
            for (x, y) in t.iter().zip(tag) {
                d |= x ^ y;
            }
            std::hint::black_box(d) == 0
        }
    }
}
