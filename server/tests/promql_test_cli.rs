//! `ember promql-test` as a user runs it: the built binary over the query crate's corpus, and its
//! exit statuses for a failing script and an unreadable file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../query/testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    files
}

fn promql_test(files: &[PathBuf]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .arg("promql-test")
        .args(files)
        .output()
        .expect("running ember promql-test");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

/// The last line, `N passed, N failed, N skipped`, as numbers.
fn summary(stdout: &str) -> (usize, usize, usize) {
    let line = stdout.lines().last().unwrap_or("");
    let n: Vec<usize> = line
        .split(", ")
        .map(|part| {
            part.split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a summary line: {line:?}"))
        })
        .collect();
    assert_eq!(n.len(), 3, "not a summary line: {line:?}");
    assert!(
        line.ends_with(" skipped") && line.contains(" passed, ") && line.contains(" failed, "),
        "not a summary line: {line:?}"
    );
    (n[0], n[1], n[2])
}

#[test]
fn corpus_passes_and_exits_zero() {
    let (out, stdout) = promql_test(&corpus_files());
    let (passed, failed, _) = summary(&stdout);
    assert_eq!(failed, 0, "ember promql-test reported failures:\n{stdout}");
    assert!(passed > 0, "no eval ran:\n{stdout}");
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}");
}

#[test]
fn failing_eval_is_reported_with_file_line_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.test");
    std::fs::write(
        &file,
        "load 1m\n  m 1 2 3\n\neval instant at 2m m\n  m 3\n\neval instant at 2m 1 + 1\n  3\n",
    )
    .unwrap();
    let (out, stdout) = promql_test(std::slice::from_ref(&file));
    assert_eq!(summary(&stdout), (1, 1, 0), "stdout:\n{stdout}");
    assert!(
        stdout.contains(&format!("{}:7: eval instant at 2m 1 + 1", file.display())),
        "no file:line for the failing eval:\n{stdout}"
    );
    assert!(
        stdout.contains("expected:") && stdout.contains("got:"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}");
}

#[test]
fn unreadable_file_exits_two() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.test");
    let (out, _) = promql_test(&[missing]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.test"));
}
