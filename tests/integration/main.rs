//! The integration-test binary: real sockets on 127.0.0.1, a fake GHES upstream, and ghes-vcr
//! started in-process or as the built binary.

mod support;

mod binary;
mod conformance;
mod fake_ghes_selftest;
mod faults;
mod journal;
mod limits;
mod record_replay;
mod replay_fidelity;
mod samples;
mod secrets;
mod tls;
mod tooling;
