//! PromQL parser and evaluator over the embedding API (issue 4; not built yet).
