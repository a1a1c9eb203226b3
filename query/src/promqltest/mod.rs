//! Runner for promqltest-format test scripts (in progress).
