//! Where the logs go: stderr, as text. Colours only on a terminal; and where stderr is
//! journald's stream (the service's log), each line begins with its syslog priority, which
//! journald keeps as the entry's (`journalctl -u haports -p warning` finds the warnings;
//! colour codes would have made every entry a blob of bytes, and every one "info").

use std::fmt;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Sets up the logging of every command: `RUST_LOG`'s filter, else `info`.
pub fn init() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let terminal = std::io::stderr().is_terminal();
    let journal = to_journal(2);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(terminal && !journal)
        .event_format(Prioritised {
            inner: Format::default().with_ansi(terminal && !journal),
            journal,
        })
        .fmt_fields(DefaultFields::new())
        .init();
}

/// The prefix of a line written to stderr outside the logs (a refused config's problems):
/// its priority where stderr is journald's (`error`: 3, else warning: 4), else nothing.
pub fn prefix(error: bool) -> &'static str {
    priority_prefix(to_journal(2), error)
}

/// As [`prefix`], for a line written to stdout (`check`'s, as the unit's `ExecStartPre`).
pub fn stdout_prefix(error: bool) -> &'static str {
    priority_prefix(to_journal(1), error)
}

fn priority_prefix(journal: bool, error: bool) -> &'static str {
    match (journal, error) {
        (false, _) => "",
        (true, true) => "<3>",
        (true, false) => "<4>",
    }
}

/// Whether file descriptor `fd` is journald's stream: `JOURNAL_STREAM` (set by systemd for
/// a service whose output goes to the journal) names its device and inode (systemd.exec(5)).
fn to_journal(fd: u8) -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata(format!("/proc/self/fd/{fd}")) else {
        return false;
    };
    stream == format!("{}:{}", meta.dev(), meta.ino())
}

/// The syslog priority of a level (RFC 5424: 3 error, 4 warning, 6 informational, 7 debug).
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// The default format, behind the line's priority where it goes to journald.
struct Prioritised<F> {
    inner: F,
    journal: bool,
}

impl<S, N, F> FormatEvent<S, N> for Prioritised<F>
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
        if !self.journal {
            return self.inner.format_event(ctx, writer, event);
        }
        // One journal entry an event: journald splits at newlines, and a message's later
        // lines (an `ip` command's stderr in an error) would lose the priority.
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let one = line.trim_end_matches('\n').replace('\n', " / ");
        writeln!(writer, "<{}>{one}", priority(*event.metadata().level()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines written where the journal reads them: each begins with its priority, and has
    /// no colour codes.
    #[test]
    fn journald_lines_begin_with_their_priority_and_have_no_colours() {
        use std::sync::{Arc, Mutex};
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || SharedBuf(sink.clone()))
            .with_ansi(false)
            .event_format(Prioritised {
                inner: Format::default().with_ansi(false),
                journal: true,
            })
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("a port is missing");
            tracing::warn!(backend = "10.0.0.11", "backend down");
            tracing::info!("running");
            tracing::error!("`ip addr` failed: first line\nsecond line");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[3].starts_with("<3>") && lines[3].ends_with("first line / second line"));
        assert!(lines[0].starts_with("<3>") && lines[0].contains("a port is missing"));
        assert!(lines[1].starts_with("<4>") && lines[1].contains("backend down"));
        assert!(lines[2].starts_with("<6>"));
        assert!(!text.contains('\x1b'), "{text}");
    }

    /// A writer into a shared buffer.
    struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::TRACE), 7);
    }
}
