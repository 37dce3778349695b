//! A venue and its book read together: where the venue leaves an asset's `quantum_exp` out,
//! the quantum is chosen from the book (`model::quantum`) and the accounts compiled with it.
//!
//! ```text
//!   venue file ──> VenueDraft ──provisional table──> read_accounts (every check but widths)
//!                      │                                   │ specs
//!                      └──────── resolve(specs) <──────────┘
//!                                    │ table with chosen quanta
//!                                    └──> compile every account; error bound per account
//! ```

use std::path::Path;

use super::InputError;
use super::accounts::{LoadedAccount, read_accounts};
use super::venue::read_venue_draft;
use crate::model::quantum::ErrorBound;
use crate::model::{AccountSpec, AssetTable};

/// A venue with its compiled book.
#[derive(Clone, Debug)]
pub struct VenueAndBook {
    /// The venue, every quantum set.
    pub table: AssetTable,
    /// The accounts, compiled against it.
    pub accounts: Vec<LoadedAccount>,
    /// The quanta chosen from the book, as (symbol, quantum_exp); empty when the venue gave all.
    pub chosen: Vec<(String, i32)>,
    /// Each account's worst-case rounding error for prices inside the assets' price ranges
    /// (empty when no range is stated; `None` for an account holding an asset without a range,
    /// or whose bound overflows).
    pub error_bounds: Vec<Option<ErrorBound>>,
}

/// Reads a venue and its accounts, choosing the quanta the venue leaves out.
pub fn read_venue_and_book(venue: &Path, accounts: &Path) -> Result<VenueAndBook, InputError> {
    let draft = read_venue_draft(venue)?;
    let (table, accounts, chosen) = if draft.needs_book() {
        let read = read_accounts(accounts, &draft.provisional())?;
        let specs: Vec<AccountSpec> = read.into_iter().map(|a| a.spec).collect();
        let (table, chosen) = draft.resolve(&specs).map_err(|e| InputError::file(venue, e))?;
        let mut out = Vec::with_capacity(specs.len());
        for (n, spec) in specs.into_iter().enumerate() {
            let terms = table.compile(&spec).map_err(|e| {
                InputError::file(accounts, format!("account #{} ('{}'): {e}", n + 1, spec.id))
            })?;
            out.push(LoadedAccount { spec, terms });
        }
        (table, out, chosen)
    } else {
        let table = draft.provisional();
        let accounts = read_accounts(accounts, &table)?;
        (table, accounts, Vec::new())
    };
    let ranged = (0..table.len()).any(|i| table.price_range(i as u16).is_some());
    let error_bounds =
        if ranged { accounts.iter().map(|a| table.error_bound(&a.spec)).collect() } else { Vec::new() };
    Ok(VenueAndBook { table, accounts, chosen, error_bounds })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VENUE: &str = r#"
[venue]
price_range = ["10", "100000"]
[[assets]]
symbol = "ETH"
stress = "0.1"
tiers.default = { asset_weight = "0.825", liability_weight = "1" }
[[assets]]
symbol = "USDC"
quantum_exp = -2
price_range = ["0.5", "2"]
tiers.default = { asset_weight = "1", liability_weight = "1" }
"#;

    #[test]
    fn reads_a_venue_without_quanta_with_its_book() {
        let dir = tempfile::tempdir().unwrap();
        let (v, a) = (dir.path().join("v.toml"), dir.path().join("a.csv"));
        std::fs::write(&v, VENUE).unwrap();
        std::fs::write(&a, "account,asset,balance\nw,ETH,100000\nw,USDC,-1000000\ns,ETH,2\ns,ETH,-1\n")
            .unwrap();
        let book = read_venue_and_book(&v, &a).unwrap();
        assert_eq!(book.chosen, vec![("ETH".to_string(), -4)]);
        assert_eq!(book.accounts.len(), 2);
        assert_eq!(book.accounts[1].terms, book.table.compile(&book.accounts[1].spec).unwrap());
        assert_eq!(book.accounts[1].terms.len(), 2, "two legs of ETH");
        assert_eq!(book.error_bounds.len(), 2);
        assert!(book.error_bounds.iter().all(|b| b.as_ref().is_some_and(|b| b.relative.is_some())));
        // A book that cannot fit the range: refused, naming the venue and the asset.
        std::fs::write(&a, "account,asset,balance\nw,ETH,10000000\n").unwrap();
        let e = read_venue_and_book(&v, &a).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: asset 'ETH': no quantum fits", v.display())), "{e}");
        // Bad rows are still refused at their line while the quantum is unknown.
        std::fs::write(&a, "account,asset,balance\nw,ETH,1\nw,DOGE,1\n").unwrap();
        let e = read_venue_and_book(&v, &a).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
    }
}
