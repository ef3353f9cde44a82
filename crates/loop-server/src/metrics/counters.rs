//! The metrics this process counts itself (per node).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// What this process counts.
pub struct Metrics {
    pub(super) registry: Registry,
    pub(super) http_requests: IntCounterVec,
    pub(super) http_seconds: HistogramVec,
    job_seconds: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "loop_http_requests_total",
                "HTTP requests answered, by route template, method and status.",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "loop_http_request_duration_seconds",
                "Time to answer HTTP requests (until the answer's head), by route template.",
            ),
            &["route"],
        )
        .expect("valid metric");
        let job_seconds = HistogramVec::new(
            HistogramOpts::new(
                "loop_job_duration_seconds",
                "Run time of the jobs that ended on this node, by kind.",
            )
            .buckets(vec![
                1.0,
                5.0,
                15.0,
                60.0,
                300.0,
                900.0,
                3600.0,
                4.0 * 3600.0,
                12.0 * 3600.0,
            ]),
            &["kind"],
        )
        .expect("valid metric");
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_seconds.clone()),
            Box::new(job_seconds.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Metrics {
            registry,
            http_requests,
            http_seconds,
            job_seconds,
        }
    }

    /// A job of `kind` ended after `ms` milliseconds.
    pub fn job_ended(&self, kind: loop_api::JobKind, ms: i64) {
        self.job_seconds
            .with_label_values(&[kind.as_str()])
            .observe(ms.max(0) as f64 / 1000.0);
    }
}
