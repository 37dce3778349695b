//! Feed frame authentication: HMAC-SHA256 (RFC 2104) over each frame with a shared secret,
//! on RustCrypto's `hmac` and `sha2`, the tag compared in constant time (`subtle`, through
//! `Mac::verify_slice`). Checked against the RFC 4231 test vectors below.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of an HMAC-SHA256 tag.
pub const TAG_BYTES: usize = 32;

/// An HMAC-SHA256 key, with the inner and outer pads hashed once (each tag starts from a clone).
#[derive(Clone)]
pub struct HmacKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

impl HmacKey {
    /// A key from the shared secret (any length; longer than the 64-byte block is hashed
    /// first, as RFC 2104 says).
    pub fn new(secret: &[u8]) -> Self {
        HmacKey { mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length") }
    }

    /// The tag of `msg`.
    pub fn tag(&self, msg: &[u8]) -> [u8; TAG_BYTES] {
        let mut m = self.mac.clone();
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    /// True when `tag` is the tag of `msg`; the comparison takes the same time wherever the
    /// bytes differ.
    pub fn verify(&self, msg: &[u8], tag: &[u8]) -> bool {
        let mut m = self.mac.clone();
        m.update(msg);
        m.verify_slice(tag).is_ok()
    }

    /// The tag of the concatenation of `parts` (a label, a counter and a message, say).
    pub fn tag_parts(&self, parts: &[&[u8]]) -> [u8; TAG_BYTES] {
        let mut m = self.mac.clone();
        parts.iter().for_each(|p| m.update(p));
        m.finalize().into_bytes().into()
    }

    /// [`verify`](Self::verify) of the concatenation of `parts`.
    pub fn verify_parts(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = self.mac.clone();
        parts.iter().for_each(|p| m.update(p));
        m.verify_slice(tag).is_ok()
    }
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

/// Parses a secret given as hex (`hex:` prefix: only `0-9a-fA-F`, an even number of digits;
/// decoded by the `hex` crate) or as the raw text; either must give at least
/// [`MIN_SECRET_BYTES`] bytes.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, SecretError> {
    let key = match s.strip_prefix("hex:") {
        Some(h) => {
            // Checked by character first: `hex` reports a byte offset and one byte of a
            // multi-byte character (`hex:aéb` would read as 'Ã' at byte 1).
            if let Some((i, ch)) = h.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
                return Err(SecretError::NotHex { ch, at: i + 1 });
            }
            hex::decode(h).map_err(|e| match e {
                hex::FromHexError::OddLength => SecretError::OddLength { digits: h.len() },
                // Not reached after the check above; mapped rather than unwrapped all the same.
                hex::FromHexError::InvalidHexCharacter { c, index } => {
                    SecretError::NotHex { ch: c, at: index + 1 }
                }
                hex::FromHexError::InvalidStringLength => SecretError::OddLength { digits: h.len() },
            })?
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
        // Test case 3: 50 bytes of 0xdd under a 20-byte key of 0xaa.
        let k = HmacKey::new(&[0xaa; 20]);
        assert_eq!(
            hex(&k.tag(&[0xdd; 50])),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
        );
        // Test case 4: a 25-byte key 01..19, 50 bytes of 0xcd.
        let k = HmacKey::new(&(1..=25).collect::<Vec<u8>>());
        assert_eq!(
            hex(&k.tag(&[0xcd; 50])),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
        );
        // Test case 6: a key longer than the block.
        let k = HmacKey::new(&[0xaa; 131]);
        assert_eq!(
            hex(&k.tag(b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        // Test case 7: a key and data both longer than the block.
        let data: &[u8] = b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.";
        assert_eq!(hex(&k.tag(data)), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
        // A tag of the wrong length never verifies.
        assert!(!k.verify(data, &k.tag(data)[..31]));
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

    #[test]
    fn non_ascii_hex_is_a_clear_error_naming_the_character() {
        // A byte-oriented hex decoder sees 'é' as two bytes and would blame 'Ã' at byte 1.
        let e = parse_secret("hex:aéb").unwrap_err().to_string();
        assert!(e.contains("'é'") && e.contains("position 2") && e.contains("not a hex digit"), "{e}");
        let e = parse_secret(&format!("hex:{}€", "ab".repeat(16))).unwrap_err().to_string();
        assert!(e.contains("'€'") && e.contains("position 33"), "{e}");
        // The same bytes as the hand decoder gave, upper or lower case.
        assert_eq!(
            parse_secret("hex:00ff10A0b0C0d0E0f001020304050607").unwrap()[..4],
            [0x00, 0xff, 0x10, 0xa0]
        );
    }
}
