//! The PromQL evaluator over an Ember `Db` (issue 4, in progress).
//!
//! The other files in this folder are the evaluator as far as it got; they are not compiled yet (this stub
//! declares none of them) because they need the PromQL AST and parser, which are still being written. The
//! next step wires them in: replace this file with the module list that declares them.
