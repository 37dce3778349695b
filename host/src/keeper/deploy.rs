//! A deployment file: several venues, each a full keeper configuration, served by one
//! process (`liqscan run --config deploy.toml`, docs/OPERATOR.md).
//!
//! ```toml
//! backend = "software"          # top-level keys: shared by every venue
//! [[venues]]
//! name = "eth"                  # the venue's name (its NATS subjects, its notes)
//! demo_accounts = 500
//! journal = "/var/lib/liqscan/eth"
//! [[venues]]
//! name = "btc"
//! venue = "btc-venue.json"
//! journal = "/var/lib/liqscan/btc"
//! ```
//!
//! Each table is laid over the shared keys, then the flags and environment over that, as for a
//! single keeper's file. A file without `venues` is a single keeper's file. Two venues may not
//! share a name or anything only one keeper can own (a journal, an events file, an address).

use std::collections::HashMap;
use std::path::Path;

use super::config::overlay;
use super::{KeeperConfig, KeeperError};

/// One venue of a deployment: its name and its keeper's configuration.
#[derive(Clone, Debug)]
pub struct VenueConfig {
    /// The venue's name (`[[venues]] name`): ASCII letters, digits, `_` and `-`, as a NATS
    /// venue's.
    pub name: String,
    /// Its keeper's configuration (shared keys, its table, then `flags`).
    pub config: KeeperConfig,
}

/// The venues of the deployment file at `path`, with `flags` (the command line and the
/// environment) laid over each; `None` if the file has no `[[venues]]` (a single keeper's).
pub fn venues_in(path: &Path, flags: &KeeperConfig) -> Result<Option<Vec<VenueConfig>>, KeeperError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeeperError::context(format!("reading {}", path.display()), e))?;
    parse(&text, &format!("config {}", path.display()), flags)
}

/// [`venues_in`] on the file's text; `origin` names the file in errors.
pub fn parse(
    text: &str,
    origin: &str,
    flags: &KeeperConfig,
) -> Result<Option<Vec<VenueConfig>>, KeeperError> {
    let bad = |what: String| KeeperError::Config(format!("{origin}: {what}"));
    let mut shared: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    let Some(tables) = shared.remove("venues") else { return Ok(None) };
    let toml::Value::Array(tables) = tables else {
        return Err(bad("`venues` must be [[venues]] tables, one per venue".into()));
    };
    if tables.is_empty() {
        return Err(bad("`venues` is empty: give one [[venues]] table per venue".into()));
    }
    let mut venues = Vec::with_capacity(tables.len());
    for (i, t) in tables.into_iter().enumerate() {
        let n = i + 1;
        let toml::Value::Table(mut t) = t else {
            return Err(bad(format!("venues entry {n} is not a table: write it as [[venues]]")));
        };
        let name = match t.remove("name") {
            Some(toml::Value::String(s)) => s,
            Some(_) => return Err(bad(format!("[[venues]] table {n}: `name` must be a string"))),
            None => return Err(bad(format!("[[venues]] table {n} has no `name`"))),
        };
        let ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(bad(format!(
                "[[venues]] table {n}: name '{name}' must be 1 to 64 ASCII letters, digits, '_' or '-'"
            )));
        }
        let mut merged = shared.clone();
        overlay(&mut merged, t);
        let base: KeeperConfig = merged.try_into().map_err(|e| bad(format!("venue {name}: {e}")))?;
        let mut config = flags.clone().over(base, &format!("{origin}: venue {name}"))?;
        // The venue's name is its NATS namespace unless the table names another.
        config.nats_venue.get_or_insert_with(|| name.clone());
        venues.push(VenueConfig { name, config });
    }
    check_distinct(&venues).map_err(bad)?;
    Ok(Some(venues))
}

/// Refuses two venues with the same name, or sharing what one keeper owns: its journal, its
/// events and histogram files, its order file, its metrics and feed addresses, its NATS
/// namespace on one server.
fn check_distinct(venues: &[VenueConfig]) -> Result<(), String> {
    let mut seen: HashMap<(&str, String), &str> = HashMap::new();
    for v in venues {
        let c = &v.config;
        let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let owned = [
            ("name", Some(v.name.clone())),
            ("journal", path(&c.journal)),
            ("out", path(&c.out)),
            ("hlog", path(&c.hlog)),
            ("metrics", c.metrics.clone()),
            ("feed.tcp", c.feed.tcp.clone()),
            ("feed.udp", c.feed.udp.clone()),
            ("executor", c.executor.clone().filter(|e| e.starts_with("jsonl:"))),
            ("nats_venue", c.nats.as_ref().and_then(|u| Some(format!("{} on {u}", c.nats_venue.as_ref()?)))),
        ];
        for (key, value) in owned {
            let Some(value) = value else { continue };
            if let Some(first) = seen.insert((key, value.clone()), &v.name) {
                return Err(if key == "name" {
                    format!("two [[venues]] tables are named '{value}': each venue needs its own name")
                } else {
                    format!(
                        "venues '{first}' and '{}' have the same {key} ({value}): each venue needs its own",
                        v.name
                    )
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venues(text: &str) -> Result<Option<Vec<VenueConfig>>, KeeperError> {
        parse(text, "config t.toml", &KeeperConfig::default())
    }

    #[test]
    fn shared_keys_fill_each_venue_and_its_table_wins() {
        let v = venues(
            "demo_accounts = 50\npace = \"flood\"\n\
             [[venues]]\nname = \"a\"\njournal = \"ja\"\n\
             [[venues]]\nname = \"b\"\ndemo_accounts = 70\njournal = \"jb\"\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].name.as_str(), v[0].config.demo_accounts), ("a", Some(50)));
        assert_eq!((v[1].name.as_str(), v[1].config.demo_accounts), ("b", Some(70)));
        assert_eq!(v[1].config.pace.as_deref(), Some("flood"));
        assert_eq!(v[1].config.nats_venue.as_deref(), Some("b"));
    }

    #[test]
    fn flags_win_over_every_venue() {
        let flags = KeeperConfig { demo_accounts: Some(9), ..KeeperConfig::default() };
        let v = parse("[[venues]]\nname = \"a\"\ndemo_accounts = 5\n", "f", &flags).unwrap().unwrap();
        assert_eq!(v[0].config.demo_accounts, Some(9));
    }

    #[test]
    fn a_single_keepers_file_has_no_venues() {
        assert!(venues("demo_accounts = 50\n").unwrap().is_none());
    }

    #[test]
    fn shared_resources_and_bad_tables_are_refused() {
        let err = |t: &str| venues(t).unwrap_err().to_string();
        let e = err("[[venues]]\nname = \"a\"\n[[venues]]\nname = \"a\"\n");
        assert!(e.contains("config t.toml") && e.contains("named 'a'"), "{e}");
        let e = err("journal = \"j\"\n[[venues]]\nname = \"a\"\n[[venues]]\nname = \"b\"\n");
        assert!(e.contains("'a' and 'b' have the same journal (j)"), "{e}");
        let e = err(
            "[[venues]]\nname = \"a\"\nmetrics = \"127.0.0.1:1\"\n[[venues]]\nname = \"b\"\nmetrics = \"127.0.0.1:1\"\n",
        );
        assert!(e.contains("same metrics"), "{e}");
        let e = err("[[venues]]\nname = \"a b\"\n");
        assert!(e.contains("name 'a b'"), "{e}");
        let e = err("[[venues]]\ndemo_accounts = 5\n");
        assert!(e.contains("table 1 has no `name`"), "{e}");
        let e = err("[[venues]]\nname = \"a\"\nbogus = 1\n");
        assert!(e.contains("venue a") && e.contains("bogus"), "{e}");
        let e = err("venues = []\n");
        assert!(e.contains("empty"), "{e}");
    }
}
