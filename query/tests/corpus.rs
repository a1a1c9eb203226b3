//! Ember's own promqltest corpus (`query/testdata/*.test`) through the real evaluator: every eval
//! must pass. Failures are printed with `file:line`, expected and got, then the summary line.

use std::path::PathBuf;

use ember_query::engine::testengine::EmberTestEngine;
use ember_query::promqltest::{RunOptions, run_files_with};

fn corpus_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_eval_passes() {
    let files = corpus_files();
    assert!(!files.is_empty(), "no .test files in query/testdata");
    let mut engine = EmberTestEngine::new();
    let mut out = Vec::new();
    let summary = run_files_with(&files, &mut engine, &RunOptions::default(), &mut out);
    let report = String::from_utf8_lossy(&out);
    // Visible with --nocapture, and in the failure output otherwise.
    println!("{report}");
    assert!(summary.passed() > 0, "no eval ran: {summary}");
    assert_eq!(summary.failed(), 0, "corpus failures:\n{report}");
}
