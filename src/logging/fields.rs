//! The fields of each log line, written as tracing-subscriber's default format writes them
//! without colours: the message bare and first, then `name=value` (values with `Debug`, which
//! for a `%` field is its `Display`), separated by spaces, and a `log` record's metadata left
//! out (it is on the line already).
//!
//! The default format styles each name and each `=` through `nu-ansi-term` even with colours
//! off: about 3,400 instructions of passthrough's per-exchange line (a terminal, where colours
//! are on, keeps the default format).

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

/// The [`FormatFields`] of log lines without colours.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes each field it visits after a space (none before the first).
struct PlainVisitor<'writer> {
    writer: Writer<'writer>,
    result: fmt::Result,
    first: bool,
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        if !std::mem::take(&mut self.first) {
            self.result = self.writer.write_char(' ');
        }
        self.result = self.result.and_then(|()| match name {
            "message" => write!(self.writer, "{value:?}"),
            name => write!(
                self.writer,
                "{}={value:?}",
                name.strip_prefix("r#").unwrap_or(name)
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::PlainFields;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl MakeWriter<'_> for Lines {
        type Writer = Lines;

        fn make_writer(&self) -> Self::Writer {
            self.clone()
        }
    }

    /// The lines `log` writes through a subscriber without time, level or colours, its fields
    /// formatted by `fields` (`None`: tracing-subscriber's default).
    fn written(fields: Option<PlainFields>, log: impl Fn()) -> String {
        let lines = Lines::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(lines.clone())
            .with_ansi(false)
            .without_time()
            .with_level(false)
            .with_target(false);
        match fields {
            Some(fields) => {
                tracing::subscriber::with_default(builder.fmt_fields(fields).finish(), log);
            }
            None => tracing::subscriber::with_default(builder.finish(), log),
        }
        let written = lines.0.lock().unwrap().clone();
        String::from_utf8(written).unwrap()
    }

    #[test]
    fn fields_are_written_as_the_default_format_writes_them_without_colours() {
        let log = || {
            let peer = "127.0.0.1:50000";
            tracing::info!(client.addr = %peer, http.status = 200_u16, elapsed_us = 17_u64, outcome = %"forwarded", "exchange");
            tracing::warn!(http.request = %"GET /api/v3/authorizations", cause = %"cannot reach upstream: refused", "upstream failed");
            tracing::info!(interactions = 3, "replay sequences rewound");
            tracing::info!(
                note = "a \"quoted\" str",
                r#type = "raw",
                "{} interactions",
                3
            );
            tracing::info!(message = "a str message", after = true);
            tracing::info!(only = 1, fields = false);
            tracing::info!("");
        };
        let plain = written(Some(PlainFields), log);
        assert_eq!(plain, written(None, log));
        assert!(
            plain.starts_with(
                "exchange client.addr=127.0.0.1:50000 http.status=200 elapsed_us=17 outcome=forwarded\n"
            ),
            "{plain}"
        );
    }
}
