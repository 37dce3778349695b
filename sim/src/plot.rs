//! SVG plots written by hand: line charts and heat maps, no plotting dependency; each is also
//! rendered to PNG ([`png`], resvg) for viewers that take no SVG.
//!
//! Plots of a run (next to its report): `price.svg` (market and oracle price of every
//! non-quote asset), `health.svg` (accounts with debt per health-factor bucket over time, a
//! heat map), `fund.svg` (the insurance fund). A sweep writes `bad_debt_heatmap.svg`.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use crate::report::Report;

const W: f64 = 720.0;
const H: f64 = 360.0;
const L: f64 = 70.0;
const R: f64 = 20.0;
const T: f64 = 30.0;
const B: f64 = 45.0;
/// Where a heat map's row labels may start: right of the rotated y-axis title.
const LABEL_CLEAR: f64 = 24.0;
/// Width of a character at the 11 px labels, a little over the average.
const CHAR_W: f64 = 6.5;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// One line of a chart.
pub struct Line<'a> {
    /// Legend.
    pub label: String,
    /// Colour (CSS).
    pub color: &'a str,
    /// Y values, one per x.
    pub y: &'a [f64],
    /// Dashed.
    pub dashed: bool,
}

/// A line chart of `lines` over `x` (seconds, shown in hours).
pub fn line_chart(title: &str, y_label: &str, x: &[f64], lines: &[Line]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="18" font-size="14" text-anchor="middle">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    let (x0, x1) = (x.first().copied().unwrap_or(0.0), x.last().copied().unwrap_or(1.0).max(1e-9));
    let ys = lines.iter().flat_map(|l| l.y.iter().copied()).filter(|v| v.is_finite());
    let (mut y0, mut y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    if (y1 - y0).abs() < 1e-12 {
        y0 -= 1.0;
        y1 += 1.0;
    }
    // Round axis ends and ticks (1, 2 or 5 times a power of ten); a series that never goes
    // negative (a fund, a price) keeps the axis at or above zero.
    let nonneg = y0 >= 0.0;
    let raw = (y1 - y0) / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|st| *st >= raw).unwrap_or(10.0 * mag);
    let mut y0 = (y0 / step).floor() * step;
    let y1 = (y1 / step).ceil() * step;
    if nonneg {
        y0 = y0.max(0.0);
    }
    let ticks = ((y1 - y0) / step).round().max(1.0) as usize;
    let px = |v: f64| L + (v - x0) / (x1 - x0).max(1e-9) * (W - L - R);
    let py = |v: f64| H - B - (v - y0) / (y1 - y0) * (H - T - B);
    let _ = writeln!(
        s,
        r##"<rect x="{L}" y="{T}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        W - L - R,
        H - T - B
    );
    for i in 0..=ticks {
        let v = y0 + step * i as f64;
        let _ = writeln!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            L - 5.0,
            py(v) + 4.0,
            fmt_num(v),
            y = py(v)
        );
    }
    for i in 0..=4 {
        let xv = x0 + (x1 - x0) * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{:.1} h</text>"#,
            px(xv),
            H - B + 16.0,
            xv / 3600.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"#,
        H / 2.0,
        H / 2.0,
        esc(y_label)
    );
    // Legend at the top right, on a white box so the lines do not run through it.
    let lw = 10.0 + 6.5 * lines.iter().map(|l| l.label.chars().count()).max().unwrap_or(0) as f64 + 40.0;
    let lx = W - R - lw - 6.0;
    let mut legend = format!(
        r##"<rect x="{lx:.1}" y="{}" width="{lw:.1}" height="{}" fill="white" fill-opacity="0.9" stroke="#ccc"/>"##,
        T + 4.0,
        14.0 * lines.len() as f64 + 8.0
    );
    legend.push('\n');
    for (i, l) in lines.iter().enumerate() {
        let mut d = String::new();
        for (k, (&xv, &yv)) in x.iter().zip(l.y).enumerate() {
            if yv.is_finite() {
                let _ = write!(d, "{}{:.1},{:.1} ", if k == 0 { "M" } else { "L" }, px(xv), py(yv));
            }
        }
        let dash = if l.dashed { r#" stroke-dasharray="5,3""# } else { "" };
        let _ = writeln!(s, r#"<path d="{d}" fill="none" stroke="{}" stroke-width="1.5"{dash}/>"#, l.color);
        let ly = T + 14.0 + 14.0 * i as f64;
        let _ = writeln!(
            legend,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 6.0,
            lx + 26.0,
            l.color,
            lx + 31.0,
            ly + 4.0,
            esc(&l.label)
        );
    }
    s.push_str(&legend);
    s.push_str("</svg>\n");
    s
}

fn heat_color(f: f64) -> String {
    // White -> orange -> dark red.
    let f = f.clamp(0.0, 1.0);
    let (r, g, b) = if f < 0.5 {
        let u = f / 0.5;
        (255.0, 255.0 - 90.0 * u, 255.0 - 215.0 * u)
    } else {
        let u = (f - 0.5) / 0.5;
        (255.0 - 115.0 * u, 165.0 - 165.0 * u, 40.0 - 40.0 * u)
    };
    format!("rgb({:.0},{:.0},{:.0})", r, g, b)
}

/// A heat map: `cells[row][col]`, labelled; the value is printed in each cell.
pub fn heat_map(
    title: &str,
    x_label: &str,
    y_label: &str,
    cols: &[String],
    rows: &[String],
    cells: &[Vec<f64>],
) -> String {
    let mut s = String::new();
    // The row labels end at the grid's left edge: give the longest one its width (about 6.5 px
    // a character at 11 px) clear of the rotated axis title.
    let longest = rows.iter().map(|r| r.chars().count()).max().unwrap_or(0);
    let left = L.max(LABEL_CLEAR + 5.0 + CHAR_W * longest as f64);
    let cw = ((W - left - R) / cols.len().max(1) as f64).min(140.0);
    let ch = ((H - T - B) / rows.len().max(1) as f64).min(60.0);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="18" font-size="14" text-anchor="middle">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    let max = cells.iter().flatten().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    for (r, row) in cells.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let x = left + c as f64 * cw;
            let y = T + r as f64 * ch;
            let f = if max > 0.0 { v / max } else { 0.0 };
            let _ = writeln!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{cw:.1}" height="{ch:.1}" fill="{}" stroke="#fff"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                heat_color(f),
                x + cw / 2.0,
                y + ch / 2.0 + 4.0,
                fmt_num(v)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 5.0,
            T + r as f64 * ch + ch / 2.0 + 4.0,
            esc(&rows[r])
        );
    }
    for (c, label) in cols.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + c as f64 * cw + cw / 2.0,
            T + rows.len() as f64 * ch + 14.0,
            esc(label)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        left + cw * cols.len() as f64 / 2.0,
        T + rows.len() as f64 * ch + 32.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"#,
        H / 2.0,
        H / 2.0,
        esc(y_label)
    );
    s.push_str("</svg>\n");
    s
}

const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/// The three plots of a run: (file name, SVG text).
pub fn run_plots(report: &Report, quote: &str) -> Vec<(String, String)> {
    let se = &report.series;
    let mut out = Vec::new();
    // Prices, each normalised to its start so several assets share one axis.
    let norm: Vec<(usize, Vec<f64>, Vec<f64>)> = se
        .assets
        .iter()
        .enumerate()
        .filter(|(_, a)| a.as_str() != quote)
        .map(|(i, _)| {
            let p0 = se.price[i].first().copied().unwrap_or(1.0).max(1e-12);
            let n = |v: &Vec<f64>| v.iter().map(|x| x / p0 * 100.0).collect::<Vec<f64>>();
            (i, n(&se.price[i]), n(&se.oracle[i]))
        })
        .collect();
    let mut lines = Vec::new();
    for (k, (i, m, o)) in norm.iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        lines.push(Line {
            label: format!(
                "{} market (start {:.2} = 100)",
                se.assets[*i],
                se.price[*i].first().copied().unwrap_or(0.0)
            ),
            color: c,
            y: m,
            dashed: false,
        });
        lines.push(Line { label: format!("{} oracle", se.assets[*i]), color: c, y: o, dashed: true });
    }
    out.push((
        "price.svg".into(),
        line_chart(&format!("{}: prices", report.scenario), "price (start = 100)", &se.t, &lines),
    ));
    // Health distribution: rows = buckets (lowest at the bottom), columns = samples.
    let n_cols = se.t.len().clamp(1, 96);
    let stride = se.t.len().div_ceil(n_cols).max(1);
    let cols: Vec<usize> = (0..se.t.len()).step_by(stride).collect();
    let rows: Vec<String> = se.health_buckets.iter().rev().cloned().collect();
    let cells: Vec<Vec<f64>> = (0..se.health_buckets.len())
        .rev()
        .map(|b| cols.iter().map(|&c| se.health[c][b] as f64).collect())
        .collect();
    let labels: Vec<String> = cols
        .iter()
        .map(|&c| if c % (stride * 12) == 0 { format!("{:.0}h", se.t[c] / 3600.0) } else { String::new() })
        .collect();
    let mut svg = heat_map(
        &format!("{}: accounts by health factor", report.scenario),
        "time",
        "health factor",
        &labels,
        &rows,
        &cells,
    );
    // Cell text is unreadable at this density: drop it.
    svg = svg
        .lines()
        .map(|l| match l.find("<text") {
            Some(i) if l.starts_with("<rect x=") => l[..i].to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let max = cells.iter().flatten().copied().fold(0.0, f64::max);
    let note = format!(
        r##"<text x="{}" y="34" text-anchor="middle" fill="#555">accounts with debt per bucket (darkest = {max:.0}, white = 0); liquidated or closed accounts leave the map</text>"##,
        W / 2.0
    );
    svg = svg.replacen("</svg>", &(note + "\n</svg>"), 1);
    out.push(("health.svg".into(), svg + "\n"));
    out.push((
        "fund.svg".into(),
        line_chart(
            &format!("{}: insurance fund", report.scenario),
            &format!("fund ({quote})"),
            &se.t,
            &[Line { label: "insurance fund".into(), color: COLORS[0], y: &se.fund_usd, dashed: false }],
        ),
    ));
    out
}

/// Why a plot could not be rendered to PNG.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    /// The SVG did not parse (a bug in the plot's writer).
    #[error("plot SVG does not parse: {0}")]
    Svg(#[from] usvg::Error),
    /// A size the rasteriser cannot hold.
    #[error("plot of {0}x{1} pixels cannot be rendered")]
    Size(u32, u32),
    /// PNG encoding failed.
    #[error("PNG encoding: {0}")]
    Encode(String),
}

/// The machine's fonts, loaded once; the plots' `sans-serif` is the first of DejaVu Sans,
/// Liberation Sans or any face found (without fonts the text is left out, the lines drawn).
fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        let families: Vec<String> =
            db.faces().flat_map(|f| f.families.iter().map(|(n, _)| n.clone())).collect();
        let pick = ["DejaVu Sans", "Liberation Sans"]
            .iter()
            .map(|s| s.to_string())
            .find(|n| families.contains(n))
            .or_else(|| families.first().cloned());
        if let Some(f) = pick {
            db.set_sans_serif_family(f);
        }
        Arc::new(db)
    })
    .clone()
}

/// Renders a plot's SVG to PNG at its own size (one pixel per user unit).
pub fn png(svg: &str) -> Result<Vec<u8>, PngError> {
    let opt = usvg::Options { fontdb: fonts(), ..Default::default() };
    let tree = usvg::Tree::from_str(svg, &opt)?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or(PngError::Size(size.width(), size.height()))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| PngError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_render_to_png_of_their_size() {
        let x = [0.0, 3600.0, 7200.0];
        let svg = line_chart(
            "title",
            "y",
            &x,
            &[Line { label: "a".into(), color: "red", y: &[1.0, 2.0, 1.5], dashed: false }],
        );
        let bytes = png(&svg).unwrap();
        let img = tiny_skia::Pixmap::decode_png(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (W as u32, H as u32));
        // White background, a red line somewhere in the plot area.
        let px = |x: u32, y: u32| img.pixel(x, y).unwrap().demultiply();
        assert_eq!((px(2, 2).red(), px(2, 2).green(), px(2, 2).blue()), (255, 255, 255));
        let red = img.pixels().iter().any(|p| {
            let c = p.demultiply();
            c.red() > 200 && c.green() < 80 && c.blue() < 80
        });
        assert!(red, "the line is drawn");
        let hm = heat_map("h", "x", "y", &["a".into(), "b".into()], &["r".into()], &[vec![0.0, 5.0]]);
        let img = tiny_skia::Pixmap::decode_png(&png(&hm).unwrap()).unwrap();
        assert!(img.width() > 0 && img.height() > 0);
    }

    #[test]
    fn charts_are_well_formed_svg() {
        let x = [0.0, 3600.0, 7200.0];
        let svg = line_chart(
            "t <1>",
            "y",
            &x,
            &[Line { label: "a&b".into(), color: "red", y: &[1.0, 2.0, 1.5], dashed: true }],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;1&gt;") && svg.contains("a&amp;b") && svg.contains("M"));
        let hm = heat_map("h", "x", "y", &["a".into(), "b".into()], &["r".into()], &[vec![0.0, 5.0]]);
        assert_eq!(hm.matches("<rect x=").count(), 2);
        assert!(hm.contains("rgb(140,0,0)"), "the maximum is darkest");
    }

    /// Long row labels (a fund size in dollars) start clear of the rotated axis title, and the
    /// grid starts right of where they end.
    #[test]
    fn heat_map_row_labels_do_not_overlap_the_axis_title_or_the_grid() {
        let num = |t: &str, key: &str| -> f64 {
            let i = t.find(key).unwrap() + key.len();
            t[i..].split('"').next().unwrap().parse().unwrap()
        };
        for label in ["r", "20000000", "perp.markets.BTC.tiers[2]"] {
            let rows = vec![label.to_string(), "1".into()];
            let hm = heat_map("h", "x", "fund", &["a".into()], &rows, &[vec![1.0], vec![2.0]]);
            let line = hm.lines().find(|l| l.contains(&format!(">{label}</text>"))).unwrap();
            let end = num(line, "<text x=\"");
            let start = end - CHAR_W * label.chars().count() as f64;
            assert!(start >= LABEL_CLEAR, "{label}: starts at {start}");
            let grid = num(hm.lines().find(|l| l.starts_with("<rect x=")).unwrap(), "<rect x=\"");
            assert!(grid > end, "{label}: grid at {grid}, label ends at {end}");
        }
    }
}
