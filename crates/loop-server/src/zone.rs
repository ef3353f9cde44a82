//! Times as people read them: in a time zone (a person's own, else their tenant's), as
//! `2026-12-03 07:00 CET`. Pages and mail both write times this way.

use chrono::{DateTime, Utc};
use loop_api::schedule::Tz;

/// A time (Unix ms) in the zone named `time_zone` (a tenant's), like `2026-12-03 07:00 CET`.
pub fn local_time(ms: i64, time_zone: &str) -> String {
    Zone::of(time_zone).text(crate::db::time(ms))
}

/// The time zone a reader's times are shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone(pub Tz);

impl Zone {
    pub const UTC: Zone = Zone(Tz::UTC);

    /// The zone an IANA name (`Europe/Amsterdam`) names; UTC for a name it does not know.
    pub fn of(name: &str) -> Zone {
        loop_api::schedule::parse_time_zone(name).map_or(Zone::UTC, Zone)
    }

    /// The zone's IANA name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// `at` to the minute, with the zone's abbreviation: `2026-12-03 07:00 CET`.
    pub fn text(self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.0)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// The day `at` falls on in the zone: `2026-12-03`.
    pub fn day(self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.0).format("%Y-%m-%d").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_reads_in_the_zone_with_its_abbreviation_and_day() {
        // 2026-03-29 01:00 UTC: Amsterdam has just moved to summer time.
        let at = crate::db::time(1_774_746_000_000);
        let ams = Zone::of("Europe/Amsterdam");
        assert_eq!(ams.text(at), "2026-03-29 03:00 CEST");
        assert_eq!(
            Zone::of("America/New_York").text(at),
            "2026-03-28 21:00 EDT"
        );
        assert_eq!(Zone::of("America/New_York").day(at), "2026-03-28");
        assert_eq!(Zone::of("no/such zone"), Zone::UTC);
        assert_eq!(Zone::UTC.text(at), "2026-03-29 01:00 UTC");
        assert_eq!(ams.name(), "Europe/Amsterdam");
    }
}
