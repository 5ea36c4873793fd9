//! Measurement for hftnet: the clock, HDR histograms and their summaries, the
//! environment record, the fixed-rate timetable, the ping-pong / fixed-rate /
//! throughput harness built on the transports of `hftnet-io`, one multicast
//! sender measured at many receivers (fanout), the ladder, the paper's
//! tuning ladder's claims and verdicts, the HTML report, and the cache-line
//! floor every inter-CPU row reads against.

#![forbid(unsafe_code)]

pub mod clock;
pub mod env;
pub mod fanout;
pub mod floor;
pub mod html;
pub mod ladder;
pub mod paper;
pub mod pingpong;
pub mod report;
pub mod stats;
pub mod throughput;
pub mod timetable;
