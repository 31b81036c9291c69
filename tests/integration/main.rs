//! Integration tests: the built `stockstream` binary against a real Apache Kafka broker and a
//! real PostgreSQL that the tests start themselves (see support/broker.rs and
//! support/postgres.rs).

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
mod postgres_local;
mod produce;
mod profiles;
mod security;
mod store;
mod support;
mod topic;
