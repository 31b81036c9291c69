"""bench/spark_query.py: the Spark Structured Streaming job that bench/spark races against
`stockstream aggregate`: the same bars from the same topic.

It reads the whole topic (startingOffsets=earliest, Trigger.AvailableNow), parses each tick
(stockstream's wire format, src/record.rs: symbol, price, volume, and timestamp in Unix
seconds, the event time), keeps the valid ones, and per symbol and 10-second event-time
tumbling window (watermark 2 seconds) computes open and close (the prices of the earliest
and latest tick by event time), high, low, VWAP, volume and trades, in append mode to the
`noop` sink, so that writing the bars costs nothing. `local[2]`: two cores, like the
machine's, and 2 shuffle partitions (with Spark's default of 200 it took about twice as
long here).

The rate counts the records read over the wall time from StreamingQuery start() to the end
of awaitTermination(): the JVM's and the session's start-up are left out. In append mode
Spark keeps the last window open when a drained run ends, so records are counted, not bars.
Prints one line on stdout:

    spark: RECORDS records in SECONDS s (RATE records/s; peak batch PEAK records/s; N batches with data)

where PEAK is the highest processedRowsPerSecond of one micro-batch. With --output DIR the
bars go to JSON files in DIR instead of `noop` (to compare them with stockstream's).
"""

import argparse
import os
import sys
import tempfile
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

SYMBOLS = ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"]

TICK = StructType(
    [
        StructField("symbol", StringType()),
        StructField("price", DoubleType()),
        StructField("volume", LongType()),
        StructField("timestamp", DoubleType()),
    ]
)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", required=True, help="Kafka bootstrap servers")
    p.add_argument("--topic", required=True, help="topic of JSON ticks")
    p.add_argument(
        "--jars",
        default=os.environ.get("SPARK_JARS", ""),
        help="comma-separated jars of the Kafka source (default: $SPARK_JARS, from bench/spark-env)",
    )
    p.add_argument("--window", default="10 seconds", help="tumbling window length")
    p.add_argument("--watermark", default="2 seconds", help="allowed lateness")
    p.add_argument(
        "--shuffle-partitions",
        type=int,
        default=2,
        help="partitions of the aggregation state (Spark's default, 200, is for clusters)",
    )
    p.add_argument("--checkpoint", help="checkpoint folder (default: a new temporary one)")
    p.add_argument("--output", help="write the bars as JSON files here instead of to noop")
    return p.parse_args()


def bars(spark, args):
    ticks = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.brokers)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")
        .load()
        .select(F.from_json(F.col("value").cast("string"), TICK).alias("t"))
        .select("t.*")
        # What stockstream would dead-letter, Spark leaves out.
        .where(
            F.col("symbol").isin(SYMBOLS)
            & (F.col("price") > 0)
            & (F.col("volume") >= 0)
            & (F.col("timestamp") > 0)
        )
        .withColumn("event_time", F.timestamp_seconds("timestamp"))
        .withWatermark("event_time", args.watermark)
    )
    return ticks.groupBy(F.window("event_time", args.window), "symbol").agg(
        F.min_by("price", "event_time").alias("open"),
        F.max("price").alias("high"),
        F.min("price").alias("low"),
        F.max_by("price", "event_time").alias("close"),
        (F.sum(F.col("price") * F.col("volume")) / F.sum("volume")).alias("vwap"),
        F.sum("volume").alias("volume"),
        F.count(F.lit(1)).alias("trades"),
    )


def main():
    args = parse_args()
    # The broker is on loopback; without this Spark binds to the host name's address and warns.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("stockstream-bench")
        .config("spark.jars", args.jars)
        .config("spark.sql.shuffle.partitions", args.shuffle_partitions)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Every micro-batch's progress is kept, so the records of all of them are counted.
        .config("spark.sql.streaming.numRecentProgressUpdates", 100000)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    checkpoint = args.checkpoint or tempfile.mkdtemp(prefix="spark-bench-")

    writer = (
        bars(spark, args)
        .writeStream.outputMode("append")
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
    )
    if args.output:
        writer = writer.format("json").option("path", args.output)
    else:
        writer = writer.format("noop")

    started = time.monotonic()
    query = writer.start()
    query.awaitTermination()
    elapsed = time.monotonic() - started
    if query.exception() is not None:
        print(f"spark: the query failed: {query.exception()}", file=sys.stderr)
        return 1

    progress = {p["batchId"]: p for p in query.recentProgress}
    records = sum(p["numInputRows"] for p in progress.values())
    peak = max((p.get("processedRowsPerSecond") or 0.0 for p in progress.values()), default=0.0)
    batches = sum(1 for p in progress.values() if p["numInputRows"] > 0)
    print(
        f"spark: {records} records in {elapsed:.2f} s ({records / elapsed:.0f} records/s;"
        f" peak batch {peak:.0f} records/s; {batches} batches with data)"
    )
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
