# stockstream's tasks (https://just.systems): `just` lists them.
#
# Settings are variables, overridden before the recipe name: `just PARTITIONS=8 topic-create`,
# `just TOPIC=ticks topic-describe`, `just KAFKA_LOCAL_PORT=19092 up`,
# `just POSTGRES_LOCAL_PORT=5433 pg-up`.

set positional-arguments

# Partitions for topic-create (also `just topic-create 8`)
PARTITIONS := "5"

# The topic of the topic-* recipes
TOPIC := "stock_prices"

# The local launcher's data folder
export KAFKA_LOCAL_DATA := env("KAFKA_LOCAL_DATA", env("KAFKA_LOCAL_HOME", justfile_directory() / ".kafka-local") / "data")

# The local launcher's client port, when `up` runs Kafka without containers (containers use
# 9092); by default the port of the one running (which it remembers), else 9092
export KAFKA_LOCAL_PORT := env("KAFKA_LOCAL_PORT", shell('cat "$1/broker.port" 2>/dev/null || echo 9092', KAFKA_LOCAL_DATA))

# How the launcher's messages tell you to choose another port
export KAFKA_LOCAL_PORT_SETTING := "`just KAFKA_LOCAL_PORT=N up`"

# Where stockstream connects; an exported STOCKSTREAM_BROKERS wins, as it does for stockstream
export STOCKSTREAM_BROKERS := env("STOCKSTREAM_BROKERS", "localhost:" + KAFKA_LOCAL_PORT)

# The local PostgreSQL's data folder (`just pg-up`)
export POSTGRES_LOCAL_DATA := env("POSTGRES_LOCAL_DATA", justfile_directory() / ".postgres-local" / "data")

# The local PostgreSQL's port; by default the port of the one running (which it remembers),
# else 5432
export POSTGRES_LOCAL_PORT := env("POSTGRES_LOCAL_PORT", "")

# How the PostgreSQL launcher's messages tell you to choose another port
export POSTGRES_LOCAL_PORT_SETTING := "`just POSTGRES_LOCAL_PORT=N pg-up`"

# Where store and history connect; an exported STOCKSTREAM_POSTGRES_URL wins, as it does for
# stockstream, else the local PostgreSQL's URL
export STOCKSTREAM_POSTGRES_URL := env("STOCKSTREAM_POSTGRES_URL", shell('POSTGRES_LOCAL_DATA="$2" POSTGRES_LOCAL_PORT="$3" "$1" url', justfile_directory() / "scripts" / "postgres-local", POSTGRES_LOCAL_DATA, POSTGRES_LOCAL_PORT))

# How the recipes run stockstream: the release build
STOCKSTREAM := "cargo run --release --quiet --"

# List the recipes, in this file's order
[private]
default:
    @{{ quote(just_executable()) }} --justfile {{ quote(justfile()) }} --list --unsorted

# Start Kafka: containers (Kafka + Kafka UI on :8080) when an engine works, else the local launcher
[group('kafka')]
[no-exit-message]
up:
    scripts/kafka-stack up

# Stop Kafka (containers or the local launcher); data is kept
[group('kafka')]
[no-exit-message]
down:
    scripts/kafka-stack down

# Stop Kafka, then start it again
[group('kafka')]
restart: down up

# Stop Kafka and delete its data (asks first; `just --yes nuke` does not)
[confirm("Delete all of Kafka's data (topics, offsets)? [y/N]")]
[group('kafka')]
nuke:
    scripts/kafka-stack nuke

# Whether Kafka runs, and where (exit 0: it answers, 1: not yet, 3: nothing runs)
[group('kafka')]
[no-exit-message]
status:
    @scripts/kafka-stack status

# Follow the broker's log (with containers, `just logs kafka-ui` for the UI's)
[group('kafka')]
[no-exit-message]
logs *ARGS:
    @scripts/kafka-stack logs "$@"

# Start a three-node cluster without containers on 127.0.0.1:19092-19094 (3 replicas, min ISR 2)
[group('kafka')]
up-cluster *ARGS:
    scripts/kafka-cluster start "$@"

# Stop the three-node cluster; data is kept
[group('kafka')]
down-cluster *ARGS:
    scripts/kafka-cluster stop "$@"

# The cluster's other commands: `just cluster status`, `just cluster kill-node 2`, … (`just cluster --help`)
[group('kafka')]
cluster *ARGS:
    scripts/kafka-cluster "$@"

# Start a local PostgreSQL for store and history, without containers (scripts/postgres-local)
[group('postgres')]
[no-exit-message]
pg-up:
    scripts/postgres-local start

# Stop the local PostgreSQL; data is kept
[group('postgres')]
[no-exit-message]
pg-down:
    scripts/postgres-local stop

# Stream stock ticks into stock_prices, e.g. `just produce --rate 100`
[group('stream')]
produce *ARGS:
    {{ STOCKSTREAM }} produce "$@"

# Aggregate stock_prices into windowed bars, e.g. `just aggregate --window 1m`
[group('stream')]
aggregate *ARGS:
    {{ STOCKSTREAM }} aggregate "$@"

# Store the bars of stock_aggregates in PostgreSQL, e.g. `just store --group mine`
[group('stream')]
store *ARGS:
    {{ STOCKSTREAM }} store "$@"

# Bars from PostgreSQL, e.g. `just history --symbol AAPL --since 1h --resample 5m`
[group('stream')]
history *ARGS:
    {{ STOCKSTREAM }} history "$@"

# Everything in one process on an embedded cluster, no Kafka needed
[group('stream')]
demo *ARGS:
    {{ STOCKSTREAM }} demo "$@"

# A guided tour of partitions, keys, offsets and consumer-group lag
[group('stream')]
demo-partitions *ARGS:
    {{ STOCKSTREAM }} demo-partitions "$@"

# Create TOPIC with PARTITIONS partitions (5); nothing happens if it exists
[group('topics')]
topic-create partitions=PARTITIONS:
    {{ STOCKSTREAM }} topic create {{ quote(TOPIC) }} --if-not-exists --partitions {{ quote(trim_start_match(partitions, "PARTITIONS=")) }}

# Partitions, offsets and message counts of TOPIC
[group('topics')]
topic-describe *ARGS:
    {{ STOCKSTREAM }} topic describe {{ quote(TOPIC) }} "$@"

# All topics
[group('topics')]
topic-list *ARGS:
    {{ STOCKSTREAM }} topic list "$@"

# Delete TOPIC (asks on a terminal; `just topic-delete --yes` does not)
[group('topics')]
topic-delete *ARGS:
    {{ STOCKSTREAM }} topic delete {{ quote(TOPIC) }} "$@"

# Unit and integration tests (they start their own Kafka and PostgreSQL)
[group('dev')]
test *ARGS:
    cargo test "$@"

# What CI checks: formatting, lints, tests
[group('dev')]
check:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
    cargo test

# Throughput against Kafka's own perf tools (minutes; own broker; see docs/BENCHMARKS.md)
[group('dev')]
bench:
    bench/produce
    bench/aggregate

# Delete build output (not Kafka's data: that is `just nuke`)
[group('dev')]
clean:
    cargo clean

# Install stockstream into ~/.cargo/bin
[group('dev')]
install:
    cargo install --locked --path .
