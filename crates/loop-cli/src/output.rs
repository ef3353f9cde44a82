//! What every command prints: a human summary, nothing with `--quiet`, or with `--json`
//! one JSON document on one line (JSON Lines when a command reports in several steps).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::args::Global;

pub(crate) fn ok() -> Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}

/// Success, or the given failure code (see the exit codes in main.rs).
pub(crate) fn exit_code(success: bool, failure: u8) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(failure)
    }
}

/// True when the command talks to a person: neither `--json` nor `--quiet`.
pub(crate) fn human(g: &Global) -> bool {
    !g.json && !g.quiet
}

/// One JSON document on one line of standard output.
pub(crate) fn print_json(v: &impl Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Prints `v` as JSON with `--json`, else runs `human` unless `--quiet`.
pub(crate) fn show<T: Serialize>(g: &Global, v: &T, human: impl Fn(&T)) -> Result<ExitCode> {
    if g.json {
        print_json(v)?;
    } else if !g.quiet {
        human(v);
    }
    Ok(ExitCode::SUCCESS)
}

/// Text that came from elsewhere (a server's job log, a file name a backup met), made safe
/// to print on a terminal: control characters are shown escaped (`\u{1b}`), so none can
/// move the cursor, retitle the window or write the clipboard.
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_print_escaped() {
        assert_eq!(printable("plain text"), "plain text");
        assert_eq!(
            printable("a\u{1b}]52;c;eA==\u{7}b\n"),
            "a\\u{1b}]52;c;eA==\\u{7}b\\u{a}"
        );
    }
}
