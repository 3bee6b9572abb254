//! Progress bars on standard error, only when it is a terminal: scripts and CI logs stay quiet.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn on_terminal(bar: ProgressBar) -> ProgressBar {
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A bar over input bytes (a spinner when the length is unknown, e.g. standard input).
pub fn bytes(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(len) => ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
            .with_style(style(
                "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
            )),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()).with_style(
            style("{prefix} {spinner} [{elapsed_precise}] {bytes} {msg}"),
        ),
    };
    bar.set_prefix(what.to_owned());
    on_terminal(bar)
}

/// A bar over log events; its length is set once the head is known.
pub fn events(what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()).with_style(style(
        "{prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events ({per_sec}, {eta}) {msg}",
    ));
    bar.set_prefix(what.to_owned());
    on_terminal(bar)
}

/// A spinner for work of unknown size.
pub fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
        .with_style(style("{prefix} {spinner} [{elapsed_precise}] {msg}"));
    bar.set_prefix(what.to_owned());
    on_terminal(bar)
}
