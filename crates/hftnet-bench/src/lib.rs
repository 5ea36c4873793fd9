//! Measurement for hftnet: the clock, HDR histograms and their summaries, the
//! environment record, the fixed-rate timetable, and the ping-pong /
//! fixed-rate / throughput harness built on the transports of `hftnet-io`.

#![forbid(unsafe_code)]

pub mod clock;
pub mod env;
pub mod ladder;
pub mod pingpong;
pub mod report;
pub mod stats;
pub mod throughput;
pub mod timetable;
