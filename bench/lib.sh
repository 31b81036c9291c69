# Shared by the bench/ scripts: a release build, Kafka's tools, and a throw-away local broker
# on $PORT that stops when the script exits. Source it; it sets BIN, TOOLS, BROKER, WORK, and
# offers `launch` for further servers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v /usr/bin/time >/dev/null || { echo "the benchmarks need GNU time (apt-get install time)" >&2; exit 1; }
cargo build --release --quiet
BIN=target/release/stockstream
scripts/kafka-local fetch --tools
TOOLS="$(scripts/kafka-local classpath --tools)"
WORK="$(mktemp -d)"
BROKER="127.0.0.1:$PORT"

# What the script leaves when it exits, also on a failure or Ctrl+C: the servers `launch`
# started (stopped first; a launcher may have gone already), then these folders. Ctrl+C ends
# the script even where the command it interrupted exits normally on it.
LAUNCHERS=()
REMOVE_AT_EXIT=("$WORK")
trap 'for pid in "${LAUNCHERS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
      for pid in "${LAUNCHERS[@]}"; do wait "$pid" 2>/dev/null || true; done
      rm -rf "${REMOVE_AT_EXIT[@]}"' EXIT
trap 'exit 130' INT TERM HUP

# launch NAME CMD...: runs CMD, a launcher that prints READY once its server accepts
# connections and stops the server on SIGTERM, in the background; waits for READY. Its
# output is in $WORK/NAME.out and NAME.err.
launch() {
    local name=$1 pid
    shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    pid=$!
    LAUNCHERS+=("$pid")
    until grep -q READY "$WORK/$name.out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
        sleep 0.5
    done
}

launch kafka scripts/kafka-local run --port "$PORT" --data "$WORK/kafka" --ephemeral --watch-pid $$

# create_topic NAME [FLAG...]: 5 partitions, like stock_prices, and the flags of `topic create`.
create_topic() {
    "$BIN" -q -b "$BROKER" topic create "$1" --partitions 5 "${@:2}" >/dev/null
}

# ratio A B: A / B with two decimals.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

# median: of the numbers on stdin, one per line (two decimals when it falls between two).
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# mb KILOBYTES: as megabytes with one decimal.
mb() {
    awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}

# aggregate_rate TOPIC NAME GUARANTEE [FLAG...]: drains TOPIC with `aggregate --from earliest
# --stop-at-end` under group, output topic and instance id named after NAME, and the given
# flags; checks that it read $COUNT records; prints "RECORDS_PER_S PEAK_RSS_KB COMMITS CPU_S"
# (CPU_S: user + system seconds of the whole process, all its threads).
aggregate_rate() {
    local topic=$1 name=$2 guarantee=$3 got records rate commits rss user sys
    shift 3
    /usr/bin/time -f "%M %U %S" -o "$WORK/rss" "$BIN" --color never -b "$BROKER" aggregate --topic "$topic" \
        --group "bench-$name" --output-topic "bars-$name" --output-retention forever --from earliest \
        --guarantee "$guarantee" --stop-at-end --no-console --progress-interval 1h --instance-id "bench-$name" \
        "$@" >/dev/null 2>"$WORK/ss.err" || { cat "$WORK/ss.err" >&2; exit 1; }
    # "📋 Summary: 5,000,000 records read, …; 3.21s from first to last record (1,557,632
    #  records/s); 31 commits, median 24 ms, p99 60 ms, longest 61 ms" (1 record, 1 commit)
    got=$(sed -n 's/.*Summary: \([0-9,]*\) records\? read.*(\([0-9,]*\) records\?\/s); \([0-9,]*\) commits\?.*/\1 \2 \3/p' "$WORK/ss.err" | tr -d ,)
    read -r records rate commits <<<"$got"
    [[ "$records" == "$COUNT" ]] || { echo "aggregate read ${records:-no} records of $COUNT" >&2; cat "$WORK/ss.err" >&2; exit 1; }
    read -r rss user sys <"$WORK/rss"
    echo "$rate $rss $commits $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
}
