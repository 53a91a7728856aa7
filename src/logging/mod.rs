//! ghes-vcr's own log lines, on stderr: what tracing-subscriber writes, made cheaper where
//! passthrough pays for it on every exchange.
//!
//! - [`time`] stamps each line, making the part down to the second once a second;
//! - [`fields`] writes its fields as the default format does without colours, without styling
//!   each one;
//! - [`writer`] queues the lines in memory and writes them out in batches, on a thread of
//!   their own.

pub mod fields;
pub mod time;
pub mod writer;
