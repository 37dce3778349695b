//! Account files: TOML (`[[accounts]]`), JSON (an array, or `{"accounts": [...]}`), or CSV in
//! long form, one balance a row:
//!
//! ```text
//! account,asset,balance,tier
//! alice,ETH,10,default
//! alice,USDC,-15000,default
//! ```
//!
//! The tier column is optional. Every account is compiled against the venue while reading, so
//! an unknown asset or tier, an over-precise balance or a coefficient overflow is reported with
//! the file and line (CSV) or the account's position (TOML/JSON).

use std::collections::HashMap;
use std::path::Path;

use liqscan_hdl::abi::Coeff;
use serde::Deserialize;

use super::{Format, InputError, json_line, read_text, toml_line};
use crate::model::{AccountSpec, AssetTable, Decimal};

/// An account as read and compiled: its spec and its datapath terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedAccount {
    /// The account as written.
    pub spec: AccountSpec,
    /// Its compiled terms.
    pub terms: Vec<Coeff>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsDoc {
    accounts: Vec<AccountSpec>,
}

/// Parses account text; `path` names it in errors.
pub fn parse_accounts(
    path: &Path,
    text: &str,
    format: Format,
    table: &AssetTable,
) -> Result<Vec<LoadedAccount>, InputError> {
    let specs: Vec<(AccountSpec, Option<usize>)> = match format {
        Format::Toml => {
            let doc: AccountsDoc = toml::from_str(text).map_err(|e| InputError {
                file: path.into(),
                line: toml_line(text, &e),
                problem: e.message().to_string(),
            })?;
            doc.accounts.into_iter().map(|a| (a, None)).collect()
        }
        Format::Json => {
            // A list, or a document with an `accounts` list: told apart by the first character
            // rather than an untagged enum, which would hide the real error (an asset given
            // twice, a bad number) behind "did not match any variant".
            let err = |e: serde_json::Error| InputError::at(path, json_line(&e), e);
            let list: Vec<AccountSpec> = if text.trim_start().starts_with('[') {
                serde_json::from_str(text).map_err(err)?
            } else {
                serde_json::from_str::<AccountsDoc>(text).map_err(err)?.accounts
            };
            list.into_iter().map(|a| (a, None)).collect()
        }
        Format::Csv => parse_csv(path, text, table)?,
        Format::Jsonl => return Err(InputError::file(path, "accounts must be .toml, .json or .csv")),
    };
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(specs.len());
    for (n, (spec, line)) in specs.into_iter().enumerate() {
        let place = |problem: String| match line {
            Some(l) => InputError::at(path, l, problem),
            None => InputError::file(path, format!("account #{} ('{}'): {problem}", n + 1, spec.id)),
        };
        if let Some(first) = seen.insert(spec.id.clone(), n + 1) {
            return Err(place(format!("duplicate account '{}' (first as account #{first})", spec.id)));
        }
        let terms = table.compile(&spec).map_err(|e| place(e.to_string()))?;
        out.push(LoadedAccount { spec, terms });
    }
    Ok(out)
}

fn parse_csv(
    path: &Path,
    text: &str,
    table: &AssetTable,
) -> Result<Vec<(AccountSpec, Option<usize>)>, InputError> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| InputError::at(path, 1, e))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(ia), Some(is), Some(ib)) = (col("account"), col("asset"), col("balance")) else {
        return Err(InputError::at(
            path,
            1,
            "header must name the columns account, asset, balance (and optionally tier)",
        ));
    };
    let it = col("tier");
    let mut order: Vec<(AccountSpec, Option<usize>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            InputError::at(path, line, format!("malformed row: {e}"))
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        let field = |i: usize| rec.get(i).unwrap_or("");
        let id = field(ia);
        if id.is_empty() {
            return Err(InputError::at(path, line, "empty account id"));
        }
        let asset = field(is).to_string();
        let balance: Decimal =
            field(ib).parse().map_err(|e| InputError::at(path, line, format!("balance: {e}")))?;
        let tier = it.map(field).filter(|t| !t.is_empty()).unwrap_or(crate::model::account::DEFAULT_TIER);
        // Compile the row on its own so that its problem is reported at its own line.
        let mut row = AccountSpec::empty(id, tier);
        row.add_balance(&asset, balance).expect("an empty account takes any balance");
        table.compile(&row).map_err(|e| InputError::at(path, line, e))?;
        let k = *index.entry(id.to_string()).or_insert_with(|| {
            order.push((AccountSpec::empty(id, tier), Some(line)));
            order.len() - 1
        });
        let spec = &mut order[k].0;
        if spec.tier != tier {
            return Err(InputError::at(
                path,
                line,
                format!("account '{id}' is in tier '{}' above, '{tier}' here", spec.tier),
            ));
        }
        spec.add_balance(&asset, balance).map_err(|e| InputError::at(path, line, e))?;
    }
    Ok(order)
}

/// Reads an account file (.toml, .json or .csv) and compiles every account against the venue.
pub fn read_accounts(path: &Path, table: &AssetTable) -> Result<Vec<LoadedAccount>, InputError> {
    let text = read_text(path)?;
    parse_accounts(path, &text, Format::of(path)?, table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::test_venue as table;

    #[test]
    fn reads_all_three_formats_alike() {
        let t = table();
        let csv = "account,asset,balance\nalice,ETH,10\nalice,USDC,-15000\nbob,USDC,5\n";
        let toml = "[[accounts]]\nid = \"alice\"\nbalances = { ETH = \"10\", USDC = \"-15000\" }\n[[accounts]]\nid = \"bob\"\nbalances = { USDC = 5 }\n";
        let json =
            r#"[{"id":"alice","balances":{"ETH":10,"USDC":"-15000"}},{"id":"bob","balances":{"USDC":5}}]"#;
        let a = parse_accounts(Path::new("a.csv"), csv, Format::Csv, &t).unwrap();
        let b = parse_accounts(Path::new("a.toml"), toml, Format::Toml, &t).unwrap();
        let c = parse_accounts(Path::new("a.json"), json, Format::Json, &t).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            a[0].terms,
            vec![Coeff { asset: 0, coeff: 82_500 }, Coeff { asset: 1, coeff: -1_500_000 }]
        );
    }

    #[test]
    fn refuses_bad_rows_with_file_and_line() {
        let t = table();
        let p = Path::new("acc.csv");
        let cases = [
            ("account,asset,balance\na,ETH,1\na,DOGE,1\n", "acc.csv:3: account 'a': unknown asset 'DOGE'"),
            ("account,asset,balance\na,ETH,1\nb,ETH,zz\n", "acc.csv:3: balance: 'zz' is not a decimal"),
            (
                "account,asset,balance\na,ETH,1\na,ETH,2\n",
                "acc.csv:3: account 'a' has a supply (positive balance) of 'ETH' already",
            ),
            ("acct,asset,balance\n", "acc.csv:1: header must name"),
            ("account,asset,balance\na,ETH,1,extra\n", "acc.csv:2: malformed row"),
            ("account,asset,balance\na,ETH,1000000\n", "acc.csv:2: account 'a': weighted balance of 'ETH'"),
            (
                "account,asset,balance,tier\na,ETH,1,vip\n",
                "acc.csv:2: account 'a': tier 'vip' has no weights",
            ),
        ];
        for (text, want) in cases {
            let e = parse_accounts(p, text, Format::Csv, &t).unwrap_err().to_string();
            assert!(e.starts_with(want), "got {e}\nwant {want}");
        }
        let dup = r#"[{"id":"a","balances":{}},{"id":"a","balances":{}}]"#;
        let e = parse_accounts(Path::new("a.json"), dup, Format::Json, &t).unwrap_err().to_string();
        assert!(e.contains("account #2 ('a'): duplicate account 'a'"), "{e}");
        let e = parse_accounts(
            Path::new("a.json"),
            "[{\"id\":\"a\",\n\"balances\":{\"ETH\":NaN}}]",
            Format::Json,
            &t,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn reads_two_legs_of_one_asset_in_every_format() {
        let t = table();
        let csv = "account,asset,balance\nalice,ETH,10\nalice,ETH,-4\nalice,USDC,-100\n";
        let toml = "[[accounts]]\nid = \"alice\"\nbalances = { ETH = { supply = \"10\", borrow = \"-4\" }, USDC = \"-100\" }\n";
        let json =
            r#"{"accounts":[{"id":"alice","balances":{"ETH":{"supply":10,"borrow":"-4"},"USDC":-100}}]}"#;
        let a = parse_accounts(Path::new("a.csv"), csv, Format::Csv, &t).unwrap();
        let b = parse_accounts(Path::new("a.toml"), toml, Format::Toml, &t).unwrap();
        let c = parse_accounts(Path::new("a.json"), json, Format::Json, &t).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        // ETH 10 * 0.825 and 4 * 1, each its own term, positive first; never netted to 6 ETH.
        assert_eq!(
            a[0].terms,
            vec![
                Coeff { asset: 0, coeff: 82_500 },
                Coeff { asset: 0, coeff: -40_000 },
                Coeff { asset: 1, coeff: -10_000 }
            ]
        );
    }

    #[test]
    fn refuses_an_asset_twice_in_a_json_account_naming_file_line_account_and_asset() {
        let t = table();
        let p = Path::new("book.json");
        let text = "[{\"id\":\"a1\",\"balances\":{\"ETH\":\"1\"}},\n {\"id\":\"a2\",\"balances\":{\"ETH\":\"10\",\"ETH\":\"-5\"}}]";
        let e = parse_accounts(p, text, Format::Json, &t).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let e = e.to_string();
        assert!(e.starts_with("book.json:2: account 'a2' lists asset 'ETH' twice"), "{e}");
        let doc = format!("{{\"accounts\": {text}}}");
        let e = parse_accounts(p, &doc, Format::Json, &t).unwrap_err().to_string();
        assert!(e.contains("account 'a2' lists asset 'ETH' twice"), "{e}");
        let e = parse_accounts(
            Path::new("b.toml"),
            "[[accounts]]\nid = \"a\"\nbalances = { ETH = \"1\", ETH = \"-1\" }\n",
            Format::Toml,
            &t,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().contains("duplicate key"), "{e}");
    }
}
