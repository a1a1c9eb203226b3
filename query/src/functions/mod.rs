//! Pure implementations of PromQL functions over samples (in progress).
