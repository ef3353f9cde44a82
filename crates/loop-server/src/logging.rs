//! The server log: standard error, as text for a person or as JSON lines for a collector.

use serde::Deserialize;

/// How the server log is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format {s:?} (text or json)")),
        }
    }
}

/// Sets up the server log (stderr) from a `tracing` filter string, as text or as one JSON
/// object per line; every line names the node (`node=NAME` first, or a `node` field). A
/// filter that does not parse is refused whole (a part of it quietly dropped could turn on
/// a log its operator turned off).
pub fn init_logging(filter: &str, format: LogFormat, node: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(filter)
        .map_err(|e| format!("log: {filter:?} is not a log filter: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let node = node.to_string();
    let _ = match format {
        LogFormat::Json => builder
            .event_format(WithNode {
                node,
                json: true,
                inner: tracing_subscriber::fmt::format().json().flatten_event(true),
            })
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .try_init(),
        LogFormat::Text => {
            // Colour codes only for a person watching; a log file or journal gets plain text.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder
                .with_ansi(ansi)
                .event_format(WithNode {
                    node,
                    json: false,
                    inner: tracing_subscriber::fmt::format(),
                })
                .try_init()
        }
    };
    Ok(())
}

/// A line format that puts the node's name in front of what `inner` writes.
struct WithNode<F> {
    node: String,
    json: bool,
    inner: F,
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithNode<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if !self.json {
            write!(writer, "node={} ", self.node)?;
            return self.inner.format_event(ctx, writer, event);
        }
        // The inner line is one JSON object: the node becomes its first field.
        let mut line = String::new();
        self.inner.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        let node = serde_json::to_string(&self.node).map_err(|_| std::fmt::Error)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"node\":{node},{rest}"),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_filter_with_a_part_that_does_not_parse_is_refused() {
        let err = super::init_logging(
            "info,loop_server::access_log=warn,hyper=debg",
            super::LogFormat::Text,
            "n",
        )
        .unwrap_err();
        assert!(err.contains("not a log filter"), "{err}");
    }
}
