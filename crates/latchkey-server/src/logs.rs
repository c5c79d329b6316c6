//! Log output: `tracing` events to stderr, as text or JSON lines, each one written while a
//! request is handled carrying that request's id.
//!
//! The id travels in a task-local ([`crate::http::observe::RequestContext`]) rather than in a
//! tracing span: a span per request cost about a tenth of verify's throughput (the formatter
//! renders a span's fields when it is created, for every request, logged or not), where the
//! task-local costs nothing until a line is written. The id is added to the line by [`WithRequestId`]:
//! `request_id=<id>` at the end of a text line, a `"request_id"` member of a JSON line.

use std::fmt;
use std::io::IsTerminal;

use axum::http::HeaderValue;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-24T01:02:03Z  INFO latchkey_server::...: message fields request_id=...`
    Text,
    /// `{"request_id":..., "timestamp":..., "level":"INFO", "fields":{...}, "target":...}`
    Json,
}

/// Installs the process's log output: `RUST_LOG` filters (default `info`), stderr, text
/// or JSON.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => logs
            .event_format(WithRequestId {
                inner: format::format(),
                json: false,
            })
            .init(),
        LogFormat::Json => logs
            .fmt_fields(JsonFields::new())
            .event_format(WithRequestId {
                inner: format::format().json(),
                json: true,
            })
            .init(),
    }
}

/// An event format that adds the current request's id to what `inner` writes.
pub struct WithRequestId<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(id) = crate::http::observe::with_request_id(HeaderValue::clone) else {
            return self.inner.format_event(ctx, writer, event);
        };
        // Ids are 1 to 64 of `A-Z a-z 0-9 . _ -` (see `request_id`): nothing to escape.
        let id = id.to_str().unwrap_or_default();
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        match body.strip_prefix('{').filter(|_| self.json) {
            Some(members) => writeln!(writer, "{{\"request_id\":\"{id}\",{members}"),
            None => writeln!(writer, "{body} request_id={id}"),
        }
    }
}
