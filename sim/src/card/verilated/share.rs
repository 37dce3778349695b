//! The card's Verilog as Verilator is given it: replicated blocks simulated by one C++ function.
//!
//! rust-hdl writes one module per instance, named by its path (`top$core$lanes$0`,
//! `top$core$lanes$1`, ...), so the 16 lanes are 16 modules with the same text under different
//! names, and Verilator inlines each into one long straight line of code per clock edge: about
//! 1,000 instruction-cache misses a cycle (cachegrind), which bound the model's clock rate
//! (docs/lab/performance.md, "The Verilated card's clock rate").
//!
//! [`share_replicas`] rewrites only names and adds Verilator comments, so the logic is the
//! generated Verilog's, edge for edge:
//! - modules whose text is the same but for their own name and the names of the modules they
//!   instantiate (once those are merged, bottom up) become one module, the first of them;
//! - a merged module instantiated more than once and at least [`SHARE_MIN_LINES`] lines long
//!   gets `/*verilator no_inline_module*/` (Verilator keeps it as a C++ class instead of
//!   pasting it into its parent) and its inputs other than `clock` `/*verilator public*/`
//!   (kept as the module's own variables, so Verilator does not put each instance's drivers
//!   into its code): the instances' code is then the same and emitted once, called per
//!   instance. A cycle's instruction-cache misses fall from about 1,000 to under 1 and the
//!   clock rate rises 1.1 to 1.8 times side by side (docs/lab/performance.md, branch `fmax10`).
//!
//! Public variables make Verilator register scopes in the calling thread's context; the
//! wrapper (`vcard.cpp`) sets that to the model's own when it makes and frees a model, without
//! which a test binary with two models on two threads aborted or hung in three runs of four.

use std::collections::HashMap;

/// Shortest merged module (in lines) kept out of line when replicated: the lanes (about 860),
/// their memories (240) and the write fan-out (180); the flops and small memories stay inlined.
pub const SHARE_MIN_LINES: usize = 100;

/// One `module ... endmodule` of the text, with the attribute lines before it.
struct Module<'a> {
    name: &'a str,
    text: &'a str,
}

/// Splits `verilog` into its modules, each with the lines before it since the last one (its
/// attributes), and the text after the last.
fn modules(verilog: &str) -> (Vec<Module<'_>>, &str) {
    let mut mods = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    let mut name: Option<&str> = None;
    for line in verilog.split_inclusive('\n') {
        let end = pos + line.len();
        if name.is_none() {
            name = line.strip_prefix("module ").and_then(|r| r.split('(').next()).map(str::trim);
        } else if line.starts_with("endmodule") {
            mods.push(Module { name: name.take().unwrap_or_default(), text: &verilog[start..end] });
            start = end;
        }
        pos = end;
    }
    (mods, &verilog[start..])
}

/// The module an instantiation line names (`    <module> <instance>(`), if `line` is one.
fn instantiated(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_suffix('\n').unwrap_or(t).strip_suffix('(')?;
    let (module, inst) = t.split_once(' ')?;
    (!inst.contains(' ') && !module.is_empty()).then_some(module)
}

/// `text` with its own name replaced by `own` and every instantiated module `m` of `names`
/// by `map(m)`.
fn rename(text: &str, name: &str, own: &str, map: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if let Some(m) = instantiated(line)
            && let Some(to) = map.get(m)
        {
            let at = line.find(m).unwrap_or(0);
            out.push_str(&line[..at]);
            out.push_str(to);
            out.push_str(&line[at + m.len()..]);
        } else if let Some(rest) = line.strip_prefix("module ").and_then(|r| r.strip_prefix(name)) {
            out.push_str("module ");
            out.push_str(own);
            out.push_str(rest);
        } else if let Some(rest) = line.strip_prefix("endmodule // ").and_then(|r| r.strip_prefix(name)) {
            out.push_str("endmodule // ");
            out.push_str(own);
            out.push_str(rest);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The Verilator hints of a shared module: `no_inline_module` after its header, `public` on
/// its inputs other than `clock`.
fn hint(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1024);
    let mut in_header = true;
    for line in text.split_inclusive('\n') {
        if let Some(decl) = line.trim_end().strip_prefix("    input ").and_then(|d| d.strip_suffix(';'))
            && decl.split_whitespace().last() != Some("clock")
        {
            out.push_str("    input ");
            out.push_str(decl);
            out.push_str(" /*verilator public*/;\n");
            continue;
        }
        out.push_str(line);
        if in_header && line.starts_with("module ") {
            out.push_str("    /*verilator no_inline_module*/\n");
            in_header = false;
        }
    }
    out
}

/// The Verilog with identical modules merged and the replicated large ones shared (see the
/// module docs). Modules and their order are otherwise as given.
pub fn share_replicas(verilog: &str) -> String {
    let (mods, tail) = modules(verilog);
    let names: HashMap<&str, usize> = mods.iter().enumerate().map(|(i, m)| (m.name, i)).collect();
    // canon[i]: the module that stands for module i. Merging children can make parents equal,
    // so repeat until nothing changes (at most the hierarchy's depth times).
    let mut canon: Vec<usize> = (0..mods.len()).collect();
    loop {
        let map: HashMap<&str, &str> = names.iter().map(|(&n, &i)| (n, mods[canon[i]].name)).collect();
        let mut first: HashMap<String, usize> = HashMap::new();
        let next: Vec<usize> = mods
            .iter()
            .enumerate()
            .map(|(i, m)| *first.entry(rename(m.text, m.name, "\0", &map)).or_insert(i))
            .collect();
        if next == canon {
            break;
        }
        canon = next;
    }
    let map: HashMap<&str, &str> = names.iter().map(|(&n, &i)| (n, mods[canon[i]].name)).collect();
    let kept: Vec<(usize, String)> = (0..mods.len())
        .filter(|&i| canon[i] == i)
        .map(|i| (i, rename(mods[i].text, mods[i].name, mods[i].name, &map)))
        .collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (_, text) in &kept {
        for m in text.lines().filter_map(instantiated) {
            if let Some(&i) = names.get(m) {
                *uses.entry(mods[i].name).or_default() += 1;
            }
        }
    }
    let mut out = String::with_capacity(verilog.len());
    for (i, text) in kept {
        let shared =
            uses.get(mods[i].name).is_some_and(|&n| n > 1) && text.lines().count() >= SHARE_MIN_LINES;
        out.push_str(&if shared { hint(&text) } else { text });
    }
    out.push_str(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flop(name: &str, width: u32) -> String {
        format!(
            "module {name}(d,q,clock);\n    input wire  [{w}:0] d;\n    output reg  [{w}:0] q;\n    input wire  clock;\n    always @(posedge clock) begin\n       q <= d;\n    end\nendmodule // {name}\n",
            w = width - 1
        )
    }

    fn block(name: &str, child: &str, filler: usize) -> String {
        let mut s = format!(
            "(* keep_hierarchy *)\nmodule {name}(clock,x,y);\n    input wire  clock;\n    input wire  [7:0] x;\n    output wire  [7:0] y;\n"
        );
        for k in 0..filler {
            s.push_str(&format!("    // line {k}\n"));
        }
        s.push_str(&format!("    {child} r(\n        .d(x),\n        .q(y),\n        .clock(clock)\n    );\nendmodule // {name}\n"));
        s
    }

    fn top(children: &[&str]) -> String {
        let mut s = String::from("module top(clock,x);\n    input wire  clock;\n    input wire  [7:0] x;\n");
        for (k, c) in children.iter().enumerate() {
            s.push_str(&format!("    {c} b{k}(\n        .clock(clock),\n        .x(x)\n    );\n"));
        }
        s.push_str("endmodule // top\n");
        s
    }

    #[test]
    fn identical_instances_merge_bottom_up_and_large_replicas_are_shared() {
        let v = [
            top(&["top$b$0", "top$b$1", "top$c"]),
            block("top$b$0", "top$b$0$r", 120),
            flop("top$b$0$r", 8),
            block("top$b$1", "top$b$1$r", 120),
            flop("top$b$1$r", 8),
            // Same shape, but its flop is narrower: stays apart.
            block("top$c", "top$c$r", 120),
            flop("top$c$r", 4),
        ]
        .concat();
        let s = share_replicas(&v);
        let names: Vec<&str> = s
            .lines()
            .filter_map(|l| l.strip_prefix("module "))
            .map(|l| l.split('(').next().unwrap())
            .collect();
        assert_eq!(names, ["top", "top$b$0", "top$b$0$r", "top$c", "top$c$r"]);
        assert!(
            s.contains("    top$b$0 b0(\n")
                && s.contains("    top$b$0 b1(\n")
                && s.contains("    top$c b2(\n")
        );
        // top$b$0 has two instances: kept out of line, the hint right after its header.
        assert!(s.contains(
            "(* keep_hierarchy *)\nmodule top$b$0(clock,x,y);\n    /*verilator no_inline_module*/\n"
        ));
        // top$c has one: untouched, attributes kept.
        assert!(s.contains(&block("top$c", "top$c$r", 120)));
        assert_eq!(s.matches("/*verilator no_inline_module*/").count(), 1);
    }

    #[test]
    fn small_replicas_stay_inlined_and_distinct_text_is_kept_whole() {
        let v =
            [top(&["top$b$0", "top$b$1"]), block("top$b$0", "top$b$0$r", 3), flop("top$b$0$r", 8)].concat();
        let v = v + &block("top$b$1", "top$b$1$r", 3) + &flop("top$b$1$r", 8);
        let s = share_replicas(&v);
        assert!(!s.contains("verilator"));
        assert_eq!(s.matches("\nmodule ").count() + usize::from(s.starts_with("module ")), 3);
        // Nothing to merge: the text comes back as it was.
        let lone = [top(&["top$c"]), block("top$c", "top$c$r", 3), flop("top$c$r", 4)].concat();
        assert_eq!(share_replicas(&lone), lone);
    }
}
