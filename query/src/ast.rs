//! The PromQL syntax tree (filled by the parser work).
