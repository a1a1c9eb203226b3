//! PromQL lexer and parser (in progress).
