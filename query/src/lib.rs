//! PromQL over Ember's storage: the parser (`parser`, producing the `ast`), the function library
//! (`functions`: pure computations over samples, no storage or AST knowledge), the value types results
//! are made of (`value`), a runner for promqltest-format scripts (`promqltest`), and the evaluator
//! that ties them to a `Db` (`engine`).

pub mod ast;
pub mod engine;
pub mod functions;
pub mod parser;
pub mod promqltest;
pub mod value;

/// The root README's embedding examples (storage and PromQL), compiled and run as doc tests so they
/// cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
