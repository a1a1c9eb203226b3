//! PromQL parser (Prometheus 3.x grammar) producing [`crate::ast::Expr`].

mod error;
pub mod functions;

pub use error::ParseError;
pub use functions::Function;
