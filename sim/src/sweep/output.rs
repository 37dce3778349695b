//! A sweep's table (CSV and aligned text) and heat maps.

use super::{Figures, SweepResult, SweepRow};

/// A CSV cell: quoted when it holds a comma, quote or line break (an axis value such as a
/// list of margin brackets).
fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// One column: CSV header, table header, and its text in a row (CSV, table).
struct Column {
    csv: &'static str,
    head: &'static str,
    get: fn(&SweepRow) -> (String, String),
}

fn money(v: f64) -> (String, String) {
    (format!("{v:.2}"), format!("{v:.0}"))
}

fn count(v: u64) -> (String, String) {
    (v.to_string(), v.to_string())
}

/// Reads a lending or perpetual figure (rows of one sweep are all of one kind).
macro_rules! figure {
    ($kind:ident, $field:ident, $fmt:ident) => {
        |r: &SweepRow| match &r.figures {
            Figures::$kind(f) => $fmt(f.$field),
            _ => unreachable!("rows of one sweep are of one kind"),
        }
    };
}

const LENDING: [Column; 7] = [
    Column { csv: "bad_debt_usd", head: "bad debt $", get: |r| money(r.bad_debt_usd) },
    Column { csv: "absorbed_usd", head: "fund $", get: figure!(Lending, absorbed_usd, money) },
    Column { csv: "socialised_usd", head: "socialised $", get: figure!(Lending, socialised_usd, money) },
    Column { csv: "liquidations", head: "liquidations", get: figure!(Lending, liquidations, count) },
    Column { csv: "repaid_usd", head: "repaid $", get: figure!(Lending, repaid_usd, money) },
    Column { csv: "fund_final_usd", head: "fund end $", get: figure!(Lending, fund_final_usd, money) },
    Column { csv: "saved_by_partial", head: "saved", get: figure!(Lending, saved_by_partial, count) },
];

const PERPETUAL: [Column; 11] = [
    Column { csv: "bad_debt_usd", head: "unpaid $", get: |r| money(r.bad_debt_usd) },
    Column { csv: "shortfall_usd", head: "shortfall $", get: figure!(Perpetual, shortfall_usd, money) },
    Column { csv: "fund_paid_usd", head: "fund paid $", get: figure!(Perpetual, fund_paid_usd, money) },
    Column { csv: "adl_events", head: "ADL", get: figure!(Perpetual, adl_events, count) },
    Column {
        csv: "adl_haircuts_usd",
        head: "ADL haircuts $",
        get: figure!(Perpetual, adl_haircuts_usd, money),
    },
    Column { csv: "vault_pnl_usd", head: "vault P&L $", get: figure!(Perpetual, vault_pnl_usd, money) },
    Column { csv: "liquidations", head: "liquidations", get: figure!(Perpetual, liquidations, count) },
    Column {
        csv: "backstop_takeovers",
        head: "backstop",
        get: figure!(Perpetual, backstop_takeovers, count),
    },
    Column { csv: "liquidated_usd", head: "liquidated $", get: figure!(Perpetual, liquidated_usd, money) },
    Column { csv: "fund_final_usd", head: "fund end $", get: figure!(Perpetual, fund_final_usd, money) },
    Column {
        csv: "peak_events_per_sec",
        head: "peak/s",
        get: |r| match &r.figures {
            Figures::Perpetual(f) => {
                (format!("{:.1}", f.peak_events_per_sec), format!("{:.0}", f.peak_events_per_sec))
            }
            _ => unreachable!("rows of one sweep are of one kind"),
        },
    },
];

impl SweepResult {
    fn columns(&self) -> &'static [Column] {
        match self.kind {
            super::Kind::Lending => &LENDING,
            super::Kind::Perpetual => &PERPETUAL,
        }
    }

    /// The table as CSV.
    pub fn csv(&self) -> String {
        let cols = self.columns();
        let mut head: Vec<String> = self.axes.iter().map(|a| cell(a)).collect();
        head.extend(cols.iter().map(|c| c.csv.to_string()));
        let mut s = head.join(",") + "\n";
        for r in &self.rows {
            let mut line: Vec<String> = r.values.iter().map(|v| cell(v)).collect();
            line.extend(cols.iter().map(|c| (c.get)(r).0));
            s.push_str(&line.join(","));
            s.push('\n');
        }
        s
    }

    /// The table as aligned text.
    pub fn table(&self) -> String {
        let cols = self.columns();
        let mut head: Vec<String> = self.axes.clone();
        head.extend(cols.iter().map(|c| c.head.to_string()));
        let body: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let mut v = r.values.clone();
                v.extend(cols.iter().map(|c| (c.get)(r).1));
                v
            })
            .collect();
        let widths: Vec<usize> = (0..head.len())
            .map(|c| body.iter().map(|r| r[c].len()).chain([head[c].len()]).max().unwrap_or(0))
            .collect();
        let line = |cells: &[String]| {
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect::<Vec<_>>().join("  ") + "\n"
        };
        let mut s = line(&head);
        for r in &body {
            s.push_str(&line(r));
        }
        s
    }

    /// Heat maps: (file name, SVG). First axis across, second down (or a single row), one map
    /// per value of the third axis. Always bad debt (`bad_debt_heatmap*.svg`: for perpetuals
    /// the unpaid shortfall); for perpetuals also the whole shortfall (`shortfall_heatmap*`).
    pub fn heat_maps(&self) -> Vec<(String, String)> {
        let mut out = match self.kind {
            super::Kind::Lending => {
                self.heat_maps_of("bad_debt_heatmap", &format!("bad debt ({})", self.quote), |r| {
                    r.bad_debt_usd
                })
            }
            super::Kind::Perpetual => {
                self.heat_maps_of("bad_debt_heatmap", &format!("unpaid bad debt ({})", self.quote), |r| {
                    r.bad_debt_usd
                })
            }
        };
        if self.kind == super::Kind::Perpetual {
            out.extend(self.heat_maps_of(
                "shortfall_heatmap",
                &format!("shortfall, whoever bore it ({})", self.quote),
                |r| match &r.figures {
                    Figures::Perpetual(f) => f.shortfall_usd,
                    Figures::Lending(_) => r.bad_debt_usd,
                },
            ));
        }
        out
    }

    fn heat_maps_of(&self, stem: &str, what: &str, value: fn(&SweepRow) -> f64) -> Vec<(String, String)> {
        let nx = self.values[0].len();
        let ny = self.values.get(1).map_or(1, |v| v.len());
        let nz = self.values.get(2).map_or(1, |v| v.len());
        let mut out = Vec::new();
        for z in 0..nz {
            let cells: Vec<Vec<f64>> = (0..ny)
                .map(|y| (0..nx).map(|x| value(&self.rows[(x * ny + y) * nz + z])).collect())
                .collect();
            let rows: Vec<String> = self.values.get(1).cloned().unwrap_or_else(|| vec![String::new()]);
            let (title, name) = match self.values.get(2) {
                Some(v) => (
                    format!("{what}, {} = {}", self.axes[2], v[z]),
                    format!(
                        "{stem}_{}.svg",
                        v[z].replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_")
                    ),
                ),
                None => (what.to_string(), format!("{stem}.svg")),
            };
            let y_label = self.axes.get(1).cloned().unwrap_or_default();
            out.push((
                name,
                crate::plot::heat_map(&title, &self.axes[0], &y_label, &self.values[0], &rows, &cells),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_with_commas_are_quoted() {
        assert_eq!(cell("0.8"), "0.8");
        assert_eq!(cell("[{ up_to_usd = 1.0, mmr_ppm = 5 }]"), "\"[{ up_to_usd = 1.0, mmr_ppm = 5 }]\"");
        assert_eq!(cell("a\"b"), "\"a\"\"b\"");
    }
}
