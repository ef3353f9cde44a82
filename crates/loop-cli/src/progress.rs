//! Progress bars on a terminal; nothing otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar redrawn from counters that the engine updates.
pub struct Bar {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

/// What the bar shows at one moment: position, total (when known), and a message.
pub type Poll = Box<dyn Fn() -> (u64, Option<u64>, String) + Send>;

impl Bar {
    /// Starts a byte-counting bar when stderr is a terminal and output is for humans.
    pub fn bytes(enabled: bool, poll: Poll) -> Bar {
        Self::start(
            enabled,
            poll,
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
        )
    }

    pub fn count(enabled: bool, poll: Poll) -> Bar {
        Self::start(
            enabled,
            poll,
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ETA {eta} {msg}",
        )
    }

    /// Whether a bar asked for with `enabled` is drawn: only on a terminal. Work done only
    /// for the bar (the backup's count ahead of the walker, for an ETA) is skipped otherwise.
    pub fn shown(enabled: bool) -> bool {
        enabled && std::io::stderr().is_terminal()
    }

    fn start(enabled: bool, poll: Poll, template: &str) -> Bar {
        let stop = Arc::new(AtomicBool::new(false));
        if !Self::shown(enabled) {
            return Bar {
                stop,
                thread: None,
                bar: None,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let (b, s) = (bar.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let (pos, len, msg) = poll();
                if let Some(len) = len {
                    b.set_length(len.max(pos));
                }
                b.set_position(pos);
                b.set_message(crate::output::printable(&msg).into_owned());
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Bar {
            stop,
            thread: Some(thread),
            bar: Some(bar),
        }
    }

    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop_now();
    }
}
