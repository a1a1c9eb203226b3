//! PromQL over Ember's storage: the parser (`parser`, producing the `ast`), the function library
//! (`functions`: pure computations over samples, no storage or AST knowledge), the value types results
//! are made of (`value`), and a runner for promqltest-format scripts (`promqltest`). The evaluator that
//! ties them to a `Db` arrives with the rest of issue 4.

pub mod ast;
pub mod engine;
pub mod functions;
pub mod parser;
pub mod promqltest;
pub mod value;
