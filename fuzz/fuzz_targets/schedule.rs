//! A schedule is typed by a tenant's administrator: parsing it, and finding its next run in
//! any time zone from any moment, must neither panic nor loop, and a run is always later.
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use loop_api::schedule::{Schedule, TZ_VARIANTS};

fuzz_target!(|input: (&str, u16, i32)| {
    let (text, zone, seconds) = input;
    let Ok(schedule) = Schedule::parse(text) else {
        return;
    };
    let tz = TZ_VARIANTS[zone as usize % TZ_VARIANTS.len()];
    // Any moment from 1901 to 2038, around the zones' rule changes.
    let after = DateTime::<Utc>::from_timestamp(seconds as i64, 0).expect("in range");
    if let Some(next) = schedule.next_after(after, tz) {
        assert!(
            next > after,
            "{text:?} in {tz}: {next} is not after {after}"
        );
        assert_eq!(
            next.timestamp_subsec_nanos(),
            0,
            "runs fall on whole seconds"
        );
    }
});
