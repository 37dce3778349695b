//! Maps that refuse a repeated key.
//!
//! serde's maps keep the last of two equal keys, so `{"default": {..0.825..}, "default":
//! {..1..}}` silently becomes the second tier. Derived structs already refuse a repeated field
//! and TOML refuses a repeated key in its grammar; JSON maps need this. Use it on every map
//! field of an input:
//!
//! ```
//! # use std::collections::BTreeMap;
//! #[derive(serde::Deserialize)]
//! struct Asset {
//!     #[serde(deserialize_with = "liqscan_host::io::unique_keys::deserialize")]
//!     tiers: BTreeMap<String, u32>,
//! }
//! let e = serde_json::from_str::<Asset>("{\"tiers\": {\"a\": 1,\n \"a\": 2}}").err().unwrap();
//! assert!(e.to_string().starts_with("key 'a' is given twice at line 2"), "{e}");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{Deserialize, Error, MapAccess, Visitor};

/// Deserializes a map, refusing a key given twice (the error names the key; serde_json adds
/// the line and column).
pub fn deserialize<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + fmt::Display,
    V: Deserialize<'de>,
{
    struct Unique<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for Unique<K, V>
    where
        K: Deserialize<'de> + Ord + fmt::Display,
        V: Deserialize<'de>,
    {
        type Value = BTreeMap<K, V>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map with each key once")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(k) = map.next_key::<K>()? {
                if out.contains_key(&k) {
                    return Err(A::Error::custom(format!("key '{k}' is given twice")));
                }
                let v = map.next_value()?;
                out.insert(k, v);
            }
            Ok(out)
        }
    }

    d.deserialize_map(Unique(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[serde(deserialize_with = "deserialize")]
        m: BTreeMap<String, u8>,
    }

    #[test]
    fn refuses_a_repeated_key_and_keeps_distinct_ones() {
        let t: T = serde_json::from_str(r#"{"m": {"a": 1, "b": 2}}"#).unwrap();
        assert_eq!(t.m.len(), 2);
        let e = serde_json::from_str::<T>("{\"m\": {\"a\": 1,\n\n \"a\": 2}}").unwrap_err();
        assert_eq!(e.line(), 3);
        assert!(e.to_string().contains("key 'a' is given twice"), "{e}");
        // TOML refuses it in its grammar, before this map sees it.
        let e = toml::from_str::<T>("[m]\na = 1\na = 2\n").unwrap_err();
        assert!(e.message().contains("duplicate key"), "{e}");
    }
}
