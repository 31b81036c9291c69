//! `--metrics-addr`: the Prometheus metrics of `produce`, `aggregate`, `store` and the
//! dashboard, served over HTTP.
//!
//! Built on the `metrics` facade and `metrics-exporter-prometheus`, not `prometheus-client`:
//! the exporter writes Prometheus' classic text format, which both Prometheus and
//! `promtool check metrics` read (promtool takes prometheus-client's OpenMetrics counters for
//! untyped metrics without help), and it brings its own small HTTP listener (hyper, on a
//! thread of its own); `metrics-process` adds the usual `process_*` metrics. Without
//! `--metrics-addr` no recorder is installed and every metric call is a no-op.
//!
//! The jobs do not update metrics per record: they publish the totals they already keep for
//! their summary and progress lines every `PUBLISH_EVERY` (see each command's `metrics.rs`).

mod address;
mod lag;

use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use metrics_util::MetricKindMask;

pub use address::Address;
pub use lag::Lag;

/// How often a job publishes its totals, and the process metrics are read.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// A per-partition gauge not set for this long is gone from /metrics: the partition was
/// revoked (a job sets the gauges of the partitions it owns at every publish).
const GAUGES_KEPT: Duration = Duration::from_secs(30);

/// `--metrics-addr`, shared by the commands that serve metrics.
#[derive(Debug, Clone, clap::Args)]
pub struct Flag {
    /// Serve Prometheus metrics over HTTP at this address, at /metrics (e.g. 127.0.0.1:9464,
    /// or 0.0.0.0:9464 for every interface). Taken before Kafka is contacted: an address in
    /// use stops the command at once.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<Address>,
}

/// A histogram and its bucket bounds (in its unit, e.g. seconds).
pub struct Buckets {
    pub name: &'static str,
    pub bounds: &'static [f64],
}

/// Serves the process-wide metrics at `address` from now on (a thread of its own), with
/// `histograms` bucketed as given; also reads the process metrics. Fails, naming the
/// address, when it cannot be listened on. The caller says where (`Address::url`).
pub fn serve(address: &Address, histograms: &[Buckets]) -> anyhow::Result<()> {
    let mut builder = PrometheusBuilder::new()
        .with_http_listener(address.socket())
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGES_KEPT))
        // Histogram samples wait in the recorder until its upkeep sorts them into buckets.
        .upkeep_timeout(Duration::from_secs(1));
    for h in histograms {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(h.name.to_string()), h.bounds)
            .with_context(|| format!("the buckets of {}", h.name))?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the metrics server's runtime")?;
    let (recorder, exporter) = {
        let _inside = runtime.enter();
        builder.build().map_err(|e| {
            let cause = match e {
                metrics_exporter_prometheus::BuildError::FailedToCreateHTTPListener(cause) => cause,
                other => other.to_string(),
            };
            anyhow::anyhow!(
                "cannot serve metrics on {address}: {cause}\n  hint: choose another \
                 --metrics-addr, or stop what listens there"
            )
        })?
    };
    metrics::set_global_recorder(recorder).context("installing the metrics recorder")?;
    let process = metrics_process::Collector::default();
    process.describe();
    std::thread::Builder::new()
        .name("metrics".to_string())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(PUBLISH_EVERY);
                    loop {
                        every.tick().await;
                        process.collect();
                    }
                });
                if let Err(e) = exporter.await {
                    tracing::error!(target: "stockstream", "the metrics server stopped: {e:?}");
                }
            });
        })
        .context("starting the metrics server's thread")?;
    Ok(())
}
