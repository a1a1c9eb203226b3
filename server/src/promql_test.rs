//! `ember promql-test FILE…`: runs promqltest-format scripts against Ember's PromQL evaluator, the
//! way Prometheus' `promqltest` checks its own engine.
//!
//! Owns the command's contract: every file is read up front (an unreadable file is a usage error,
//! exit status 2, before anything runs), then each script runs on a fresh temporary database through
//! [`EmberTestEngine`]; every failing eval is printed with `file:line`, what was expected and what
//! came back, and the run ends with `N passed, N failed, N skipped`. Exit status 0 when nothing
//! failed, 1 otherwise. Does not own the script format, comparison or skip rules
//! (`ember_query::promqltest`) nor evaluation (`ember_query::engine`).

use std::io::Write;
use std::path::PathBuf;

use ember_query::engine::testengine::EmberTestEngine;
use ember_query::promqltest::{RunOptions, run_files_with};

/// Exit status when every eval passed (skips do not count against it).
pub const EXIT_OK: u8 = 0;
/// Exit status when at least one eval failed or a script could not run.
pub const EXIT_FAILED: u8 = 1;
/// Exit status when a named file cannot be read.
pub const EXIT_UNREADABLE: u8 = 2;

/// Runs `files`, writing failures and the summary to `out` and problems with the files themselves
/// to `err`. Returns the process exit status.
pub fn run(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    // Checked before running anything: a typo in a path should not hide behind a long run, nor be
    // confused with a failing eval.
    let unreadable: Vec<String> = files
        .iter()
        .filter_map(|p| {
            std::fs::read_to_string(p)
                .err()
                .map(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    if !unreadable.is_empty() {
        for u in &unreadable {
            let _ = writeln!(err, "ember promql-test: cannot read {u}");
        }
        return EXIT_UNREADABLE;
    }
    let mut engine = EmberTestEngine::new();
    let summary = run_files_with(files, &mut engine, &RunOptions::default(), out);
    let _ = out.flush();
    if summary.success() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}
