//! Pacing of copies to a rate of bytes a second.

use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// Spaces copies so that they move at most `rate` bytes a second on average: each copy
/// reserves its time after the ones before it and waits for the start of its turn.
pub(super) struct Pace {
    rate: u64,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    pub(super) fn new(rate: u64) -> Pace {
        Pace {
            rate,
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for the turn of a copy of `bytes`.
    pub(super) async fn take(&self, bytes: u64) {
        let start = {
            let mut next = self.next.lock().await;
            let (start, after) = turn(*next, tokio::time::Instant::now(), bytes, self.rate);
            *next = after;
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// A copy of `bytes` at `rate` bytes a second: it starts at `now` or when the copies before
/// it have had their time (`next`), whichever is later, and the next copy may start once
/// this one's time has passed. Answers (start, next).
fn turn<T>(next: T, now: T, bytes: u64, rate: u64) -> (T, T)
where
    T: Ord + std::ops::Add<Duration, Output = T> + Copy,
{
    let start = next.max(now);
    // At most a day a copy: no overflow, whatever the size and rate.
    let time = Duration::try_from_secs_f64(bytes as f64 / rate.max(1) as f64)
        .unwrap_or(DAY)
        .min(DAY);
    (start, start + time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_spaced_to_the_rate_and_an_idle_pace_starts_at_once() {
        let t0 = std::time::Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // Three copies of 1 MB asked for at once at 2 MB/s: 0 ms, 500 ms, 1000 ms.
        let (a, next) = turn(t0, t0, 1_000_000, 2_000_000);
        let (b, next) = turn(next, t0, 1_000_000, 2_000_000);
        let (c, next) = turn(next, t0, 1_000_000, 2_000_000);
        assert_eq!((a, b, c, next), (ms(0), ms(500), ms(1000), ms(1500)));
        // Asked for long after the last copy's time: at once.
        let (d, next) = turn(next, ms(5000), 250_000, 2_000_000);
        assert_eq!((d, next), (ms(5000), ms(5125)));
        // Whatever a copy's size, its time is at most a day.
        let (e, next) = turn(next, ms(5125), u64::MAX, 1);
        assert_eq!((e, next), (ms(5125), ms(5125) + DAY));
    }
}
