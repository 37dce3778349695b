//! Feed frame authentication: HMAC-SHA256 (RFC 2104) over each frame with a shared secret,
//! compared in constant time. SHA-256 (FIPS 180-4) is written here to keep the host free of
//! extra dependencies; it is checked against the FIPS and RFC 4231 test vectors below.

/// Bytes of an HMAC-SHA256 tag.
pub const TAG_BYTES: usize = 32;

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

/// Incremental SHA-256.
#[derive(Clone)]
pub struct Sha256 {
    h: [u32; 8],
    buf: [u8; 64],
    have: usize,
    len: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256 { h: H0, buf: [0; 64], have: 0, len: 0 }
    }
}

impl Sha256 {
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

    /// Feeds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
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

    /// The digest.
    pub fn finish(mut self) -> [u8; 32] {
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

    /// One-shot digest.
    pub fn digest(data: &[u8]) -> [u8; 32] {
        let mut s = Sha256::default();
        s.update(data);
        s.finish()
    }
}

/// An HMAC-SHA256 key, with the inner and outer pads hashed once.
#[derive(Clone)]
pub struct HmacKey {
    inner: Sha256,
    outer: Sha256,
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

impl HmacKey {
    /// A key from the shared secret (any length; longer than 64 bytes is hashed first).
    pub fn new(secret: &[u8]) -> Self {
        let mut k = [0u8; 64];
        if secret.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            k[..secret.len()].copy_from_slice(secret);
        }
        let (mut inner, mut outer) = (Sha256::default(), Sha256::default());
        inner.update(&k.map(|b| b ^ 0x36));
        outer.update(&k.map(|b| b ^ 0x5c));
        HmacKey { inner, outer }
    }

    /// The tag of `msg`.
    pub fn tag(&self, msg: &[u8]) -> [u8; TAG_BYTES] {
        let mut i = self.inner.clone();
        i.update(msg);
        let mut o = self.outer.clone();
        o.update(&i.finish());
        o.finish()
    }

    /// True when `tag` is the tag of `msg`; the comparison takes the same time wherever the
    /// bytes differ.
    pub fn verify(&self, msg: &[u8], tag: &[u8]) -> bool {
        ct_eq(&self.tag(msg), tag)
    }
}

/// Constant-time equality (time depends on the lengths only).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut d = 0u8;
    for (x, y) in a.iter().zip(b) {
        d |= x ^ y;
    }
    std::hint::black_box(d) == 0
}

/// Shortest shared secret taken, in bytes (128 bits): a short secret can be guessed offline
/// from one captured frame.
pub const MIN_SECRET_BYTES: usize = 16;

/// Why a shared secret was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Nothing given.
    #[error("the secret is empty")]
    Empty,
    /// A character of a `hex:` secret that is not a hex digit.
    #[error("hex secret: character {ch:?} at position {at} is not a hex digit (0-9, a-f, A-F)")]
    NotHex {
        /// The character.
        ch: char,
        /// Its position among the characters after `hex:`, from 1.
        at: usize,
    },
    /// A `hex:` secret with an odd number of digits.
    #[error("hex secret of {digits} digits: two digits a byte, so an even number is needed")]
    OddLength {
        /// Digits given.
        digits: usize,
    },
    /// Fewer than [`MIN_SECRET_BYTES`] bytes.
    #[error(
        "secret of {bytes} bytes is too short: at least {MIN_SECRET_BYTES} bytes (e.g. hex: and 32 random hex digits)"
    )]
    TooShort {
        /// Bytes given.
        bytes: usize,
    },
}

/// Parses a secret given as hex (`hex:` prefix: only `0-9a-fA-F`, an even number of digits)
/// or as the raw text; either must give at least [`MIN_SECRET_BYTES`] bytes.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, SecretError> {
    let key = match s.strip_prefix("hex:") {
        Some(h) => {
            if let Some((i, ch)) = h.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
                return Err(SecretError::NotHex { ch, at: i + 1 });
            }
            // Only ASCII hex digits from here: one byte per character.
            let d = h.as_bytes();
            if d.len() % 2 != 0 {
                return Err(SecretError::OddLength { digits: d.len() });
            }
            let nibble = |c: u8| (c as char).to_digit(16).expect("checked hex digit") as u8;
            d.chunks_exact(2).map(|p| nibble(p[0]) << 4 | nibble(p[1])).collect::<Vec<u8>>()
        }
        None => s.as_bytes().to_vec(),
    };
    match key.len() {
        0 => Err(SecretError::Empty),
        n if n < MIN_SECRET_BYTES => Err(SecretError::TooShort { bytes: n }),
        _ => Ok(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha256_vectors() {
        assert_eq!(
            hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&Sha256::digest(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        // Split updates give the same digest.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut s = Sha256::default();
        for c in data.chunks(13) {
            s.update(c);
        }
        assert_eq!(s.finish(), Sha256::digest(&data));
    }

    #[test]
    fn hmac_rfc4231() {
        // Test case 1.
        let k = HmacKey::new(&[0x0b; 20]);
        assert_eq!(
            hex(&k.tag(b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2.
        let k = HmacKey::new(b"Jefe");
        let t = k.tag(b"what do ya want for nothing?");
        assert_eq!(hex(&t), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(k.verify(b"what do ya want for nothing?", &t));
        let mut bad = t;
        bad[31] ^= 1;
        assert!(!k.verify(b"what do ya want for nothing?", &bad));
        // Test case 6: a key longer than the block.
        let k = HmacKey::new(&[0xaa; 131]);
        assert_eq!(
            hex(&k.tag(b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_key_or_an_error_never_a_panic(s in "\\PC*", h in "[0-9a-fA-F+é -]{0,40}") {
            let _ = parse_secret(&s);
            if let Ok(k) = parse_secret(&format!("hex:{h}")) {
                proptest::prop_assert_eq!(k.len() * 2, h.len());
                proptest::prop_assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
            }
        }
    }

    #[test]
    fn secrets_parse_strictly() {
        let k: Vec<u8> = (0..16).map(|i| i * 17).collect();
        let hex_k: String = k.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_secret(&format!("hex:{hex_k}")).unwrap(), k);
        assert_eq!(parse_secret(&format!("hex:{}", hex_k.to_lowercase())).unwrap(), k);
        assert_eq!(parse_secret("sixteen bytes ok").unwrap(), b"sixteen bytes ok");
        assert_eq!(parse_secret("hex:aéb"), Err(SecretError::NotHex { ch: 'é', at: 2 }));
        assert_eq!(parse_secret("hex:+1+2"), Err(SecretError::NotHex { ch: '+', at: 1 }));
        assert_eq!(parse_secret("hex:-1"), Err(SecretError::NotHex { ch: '-', at: 1 }));
        assert_eq!(parse_secret("hex: 0"), Err(SecretError::NotHex { ch: ' ', at: 1 }));
        assert_eq!(parse_secret(&format!("hex:{hex_k}0")), Err(SecretError::OddLength { digits: 33 }));
        assert_eq!(parse_secret("hex:0b0c"), Err(SecretError::TooShort { bytes: 2 }));
        assert_eq!(parse_secret("s3cret"), Err(SecretError::TooShort { bytes: 6 }));
        assert_eq!(parse_secret(""), Err(SecretError::Empty));
        assert_eq!(parse_secret("hex:"), Err(SecretError::Empty));
        // Any text: an error, never a panic.
        for s in ["hex:\u{0}", "hex:ff\u{10FFFF}", "hex:éé", "hex:0x00", "hex:\n"] {
            assert!(parse_secret(s).is_err(), "{s}");
        }
    }
}
