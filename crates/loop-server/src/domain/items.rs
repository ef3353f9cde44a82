//! The rules a protected item's settings follow, checked before it is stored.

use loop_api::ProtectedItem;
use loop_api::schedule::Schedule;

use super::{Invalid, parse_name};

/// The default time a scheduled run may start after its time before it is missed.
pub const DEFAULT_WINDOW_SECONDS: u32 = 4 * 3600;

fn bad(s: impl Into<String>) -> Invalid {
    Invalid(s.into())
}

fn check_texts(what: &str, list: &[String], max: usize, max_len: usize) -> Result<(), Invalid> {
    if list.len() > max {
        return Err(bad(format!("{what}: at most {max}")));
    }
    if list
        .iter()
        .any(|s| s.is_empty() || s.len() > max_len || s.contains('\0'))
    {
        return Err(bad(format!(
            "{what}: each 1 to {max_len} bytes, without NUL"
        )));
    }
    Ok(())
}

/// Checks (and normalises the name of) an item about to be stored.
pub fn check_item(i: &mut ProtectedItem) -> Result<(), Invalid> {
    i.name = parse_name("item name", &i.name)?;
    if i.paths.is_empty() {
        return Err(bad("paths: give at least one path to back up"));
    }
    check_texts("paths", &i.paths, 64, 4096)?;
    if i.paths.iter().any(|p| !p.starts_with('/')) {
        return Err(bad("paths: each path is absolute (starts with /)"));
    }
    check_texts("excludes", &i.excludes, 256, 1024)?;
    check_texts("tags", &i.tags, 32, 128)?;
    for c in [&mut i.pre_command, &mut i.post_command] {
        if c.as_deref().is_some_and(|s| s.trim().is_empty()) {
            *c = None;
        }
        if c.as_deref()
            .is_some_and(|s| s.len() > 4096 || s.contains('\0'))
        {
            return Err(bad("commands are at most 4096 bytes, without NUL"));
        }
    }
    if i.schedule.as_deref().is_some_and(|s| s.trim().is_empty()) {
        i.schedule = None;
    }
    if let Some(s) = &i.schedule {
        i.schedule = Some(
            Schedule::parse(s)
                .map_err(|e| bad(format!("schedule: {e}")))?
                .as_str()
                .to_string(),
        );
    }
    if !(60..=7 * 86_400).contains(&i.window_seconds) {
        return Err(bad(
            "window_seconds is between 60 (a minute) and 604800 (a week)",
        ));
    }
    if i.jitter_seconds > i.window_seconds {
        return Err(bad("jitter_seconds is at most window_seconds"));
    }
    if i.upload_limit_kib == Some(0) {
        i.upload_limit_kib = None;
    }
    Ok(())
}
