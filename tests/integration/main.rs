//! Integration tests: the built `stockstream` binary against a real Apache Kafka broker that
//! the tests start themselves (see support/broker.rs).

mod aggregate;
mod backfill;
mod broker_faults;
mod campaign;
mod cli;
mod cluster;
mod compose;
mod consume;
mod ctrl_c;
mod dashboard;
mod demo;
mod demo_partitions;
mod exactly_once;
mod group;
mod hostile;
mod justfile;
mod metrics;
mod produce;
mod profiles;
mod security;
mod support;
mod topic;
