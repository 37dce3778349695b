//! Maps that refuse a key given twice.
//!
//! serde's maps keep the last of two equal keys, and JSON allows them, so `{"ETH": "10",
//! "ETH": "-5"}` would silently become `-5`. These helpers, used with
//! `#[serde(deserialize_with = "...")]`, refuse the second key instead (TOML readers refuse
//! it already). The error names the key; serde_json adds the line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};

/// A map's entries in the order written, duplicates kept (for a caller that reports them with
/// more context than a key alone, such as the account they are in).
pub fn entries<'de, D, K, V>(d: D) -> Result<Vec<(K, V)>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
{
    struct Entries<K, V>(PhantomData<(K, V)>);
    impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Entries<K, V> {
        type Value = Vec<(K, V)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Entries(PhantomData))
}

/// A map that refuses a key given twice, naming it.
pub fn map<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + fmt::Display,
    V: Deserialize<'de>,
{
    let mut out = BTreeMap::new();
    for (k, v) in entries(d)? {
        if out.contains_key(&k) {
            return Err(D::Error::custom(format!("key '{k}' is given twice")));
        }
        out.insert(k, v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Doc {
        #[serde(deserialize_with = "map")]
        m: BTreeMap<String, i32>,
    }

    #[test]
    fn refuses_a_key_given_twice_and_keeps_distinct_ones() {
        let d: Doc = serde_json::from_str(r#"{"m":{"a":1,"b":2}}"#).unwrap();
        assert_eq!(d.m, BTreeMap::from([("a".into(), 1), ("b".into(), 2)]));
        let e = serde_json::from_str::<Doc>("{\"m\":{\"a\":1,\n\"a\":2}}").unwrap_err();
        assert!(e.to_string().contains("key 'a' is given twice"), "{e}");
        assert_eq!(e.line(), 2);
        let e = toml::from_str::<Doc>("m = { a = 1, a = 2 }").unwrap_err();
        assert!(e.to_string().contains("duplicate key"), "{e}");
    }
}
