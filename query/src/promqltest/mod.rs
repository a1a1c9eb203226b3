//! Runner for Prometheus' promqltest script format, so Ember's PromQL can be checked against the
//! same kind of scripts Prometheus checks its own engine with.
//!
//! A script is a sequence of `load <interval>` blocks (series in series notation), `clear`, and
//! `eval instant at <t> <expr>` / `eval range from <t> to <t> step <d> <expr>` blocks followed by
//! `expect …` lines and expected results. The pieces:
//!
//! - [`labels`]: reading `metric{a="b"}` label sets (no dependency on the PromQL parser).
//! - [`series`]: series notation (`1+2x3 _ stale`), `@st` sequences and durations.
//! - [`script`]: the command grammar, with `file:line` errors.
//! - [`compare`]: Prometheus' result comparison and float tolerance.
//! - [`skip`]: which evals cannot be judged (native histograms, `load_with_nhcb`, `@st`).
//! - [`runner`]: the [`TestEngine`] seam, execution, and the `N passed, N failed, N skipped`
//!   report.
//!
//! Native histograms are not stored by Ember: evals that expect them or may select histogram
//! series, and evals after a `load_with_nhcb` or `@st` start timestamps (until the next `clear`),
//! are skipped and counted, never failed.

pub mod compare;
pub mod labels;
pub mod runner;
pub mod script;
pub mod series;
pub mod skip;

pub use compare::{EPSILON, almost_equal};
pub use labels::parse_labels;
pub use runner::{
    Failure, FileReport, QueryOutcome, RunOptions, Skip, Summary, TestEngine, run_file,
    run_file_with, run_files, run_files_with, run_script,
};
pub use script::{Script, ScriptError, parse_script};
pub use series::{SeqValue, expand_values, parse_duration, parse_series_line};
pub use skip::SkipReason;
