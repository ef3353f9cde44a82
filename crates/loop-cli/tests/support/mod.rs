//! Shared support code for the `loop` CLI integration tests.
//!
//! Include it from a test file with `mod support;` and use e.g.
//! `support::garage::Garage`. Not every test binary uses every helper, hence
//! the `dead_code` allowance.
#![allow(dead_code)]

pub mod agents;
pub mod balancer;
pub mod cli;
pub mod server;
pub mod story;

#[allow(unused_imports)]
pub use loop_testkit::{garage, smtp};
