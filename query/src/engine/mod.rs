//! The PromQL evaluator over an Ember `Db` (in progress).
