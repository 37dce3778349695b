//! Output paths checked against the input paths before anything is opened: `--out` naming the
//! accounts file would truncate the book it was about to read (and exit 0 with the events in
//! its place).

use std::path::{Path, PathBuf};

/// The input files of a command that reads a venue, accounts, tick files and bar files
/// (`SYMBOL=PATH`), each with the flag that named it, for [`refuse_input_as_output`].
pub fn named_inputs<'a>(
    venue: Option<&'a Path>,
    accounts: Option<&'a Path>,
    ticks: &'a [PathBuf],
    bars: &'a [String],
) -> Vec<(&'static str, &'a Path)> {
    let mut inputs: Vec<(&str, &Path)> = Vec::new();
    inputs.extend(venue.map(|p| ("--venue", p)));
    inputs.extend(accounts.map(|p| ("--accounts", p)));
    inputs.extend(ticks.iter().map(|p| ("--ticks", p.as_path())));
    inputs.extend(bars.iter().filter_map(|b| Some(("--bars", Path::new(b.split_once('=')?.1)))));
    inputs
}

/// Refuses `out` (flag `flag`) when it is one of `inputs` (flag, path): the same file by device
/// and inode, so a symlink or another spelling of the path is caught too. An output that does
/// not exist yet, or `-` (standard output), cannot be an input.
pub fn refuse_input_as_output(flag: &str, out: &Path, inputs: &[(&str, &Path)]) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if out.as_os_str() == "-" {
        return Ok(());
    }
    let Ok(o) = std::fs::metadata(out) else { return Ok(()) };
    for (name, p) in inputs {
        if std::fs::metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == (o.dev(), o.ino())) {
            return Err(format!(
                "{flag} {} is the {name} file {}: writing it would destroy the input; name another file",
                out.display(),
                p.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_by_any_path_is_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let book = dir.path().join("a.csv");
        std::fs::write(&book, "account,asset,balance\n").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&book, &link).unwrap();
        let dotted = dir.path().join(".").join("a.csv");
        for out in [&book, &link, &dotted] {
            let e = refuse_input_as_output(
                "--out",
                out,
                &[("--venue", Path::new("v.toml")), ("--accounts", &book)],
            )
            .unwrap_err();
            assert!(e.contains("is the --accounts file"), "{e}");
        }
        assert_eq!(std::fs::read_to_string(&book).unwrap(), "account,asset,balance\n");
        let other = dir.path().join("events.jsonl");
        assert!(refuse_input_as_output("--out", &other, &[("--accounts", &book)]).is_ok());
        std::fs::write(&other, "").unwrap();
        assert!(refuse_input_as_output("--out", &other, &[("--accounts", &book)]).is_ok());
        assert!(refuse_input_as_output("--out", Path::new("-"), &[("--accounts", &book)]).is_ok());
    }
}
