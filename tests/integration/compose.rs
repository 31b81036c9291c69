//! compose.yaml, checked without a container engine: what the README, the justfile and
//! scripts/kafka-stack rely on. Kafka answers on localhost:9092 from the host and Kafka UI on
//! :8080 through an internal listener, with the launcher's Kafka version and settings.

use std::collections::BTreeMap;

use serde_norway::Value;

use crate::support::broker::repo_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path))
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn compose() -> Value {
    serde_norway::from_str(&read("compose.yaml"))
        .unwrap_or_else(|e| panic!("compose.yaml is not valid YAML: {e}"))
}

#[track_caller]
fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("compose.yaml has no service `{name}`"))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A service's environment, whether written as a map or as a list of `KEY=value`.
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v).unwrap_or_default())))
            .collect(),
        Value::Sequence(list) => list
            .iter()
            .filter_map(|item| {
                let (k, v) = item.as_str()?.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

#[track_caller]
fn var<'a>(env: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    env.get(key)
        .unwrap_or_else(|| panic!("the kafka service does not set {key}"))
}

/// The apache/kafka image's name for a broker property: `.` → `_`, `_` → `__`, `-` → `___`,
/// upper case, `KAFKA_` in front.
fn env_name(property: &str) -> String {
    let name = property
        .replace('_', "__")
        .replace('-', "___")
        .replace('.', "_");
    format!("KAFKA_{}", name.to_uppercase())
}

/// `NAME://host:port,…` as (name, host, port).
fn listeners(list: &str) -> Vec<(String, String, String)> {
    list.split(',')
        .map(|l| {
            let (name, address) = l.trim().split_once("://").expect("NAME://host:port");
            let (host, port) = address.rsplit_once(':').expect("host:port");
            (name.to_string(), host.to_string(), port.to_string())
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| s.iter().filter_map(text).collect())
        .unwrap_or_default()
}

/// `<kafka.version>` in the launcher's pom: the one Kafka version of the project.
fn launcher_kafka_version() -> String {
    let pom = read("scripts/kafka-local.d/pom.xml");
    let start = pom
        .find("<kafka.version>")
        .expect("<kafka.version> in the pom")
        + 15;
    let len = pom[start..].find('<').expect("</kafka.version>");
    pom[start..start + len].trim().to_string()
}

#[test]
fn compose_runs_the_launchers_kafka_and_kafka_ui() {
    let compose = compose();
    let version = launcher_kafka_version();
    assert!(!version.is_empty());
    let kafka = service(&compose, "kafka");
    let ui = service(&compose, "kafka-ui");
    assert_eq!(
        kafka["image"].as_str(),
        Some(&*format!("apache/kafka:{version}"))
    );
    let ui_image = ui["image"].as_str().unwrap_or_default();
    assert!(ui_image.starts_with("kafbat/kafka-ui:"), "{ui_image}");
    // scripts/kafka-stack execs into and inspects the broker by this name.
    assert_eq!(kafka["container_name"].as_str(), Some("stockstream-kafka"));
    assert!(ui["container_name"].as_str().is_some());
}

#[test]
fn kafka_answers_on_localhost_9092_and_the_ui_on_8080() {
    let compose = compose();
    let kafka = service(&compose, "kafka");
    assert!(strings(&kafka["ports"]).contains(&"9092:9092".to_string()));
    let ui = service(&compose, "kafka-ui");
    assert!(strings(&ui["ports"]).contains(&"8080:8080".to_string()));

    let env = environment(kafka);
    let advertised = listeners(var(&env, "KAFKA_ADVERTISED_LISTENERS"));
    let host = advertised
        .iter()
        .find(|(_, host, port)| host == "localhost" && port == "9092")
        .unwrap_or_else(|| panic!("no listener advertised as localhost:9092: {advertised:?}"));
    let bound = listeners(var(&env, "KAFKA_LISTENERS"));
    assert!(
        bound
            .iter()
            .any(|(name, _, port)| name == &host.0 && port == "9092"),
        "listener {} is not bound to the published port 9092: {bound:?}",
        host.0
    );
}

#[test]
fn kafka_ui_reaches_kafka_through_an_internal_listener() {
    let compose = compose();
    let ui = environment(service(&compose, "kafka-ui"));
    assert!(ui
        .get("KAFKA_CLUSTERS_0_NAME")
        .is_some_and(|n| !n.is_empty()));
    let bootstrap = ui
        .get("KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS")
        .expect("kafka-ui sets KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS");
    let (host, port) = bootstrap.rsplit_once(':').expect("host:port");
    assert_ne!(
        host, "localhost",
        "inside its container localhost is the UI itself"
    );

    let kafka = service(&compose, "kafka");
    let env = environment(kafka);
    // The UI finds the broker by its service name (or its hostname) on the compose network,
    // and must be sent back to the same address, not to the host's localhost:9092.
    assert!(
        host == "kafka" || kafka["hostname"].as_str() == Some(host),
        "{host} names no service"
    );
    let internal = listeners(var(&env, "KAFKA_ADVERTISED_LISTENERS"))
        .into_iter()
        .find(|(_, h, p)| h == host && p == port)
        .unwrap_or_else(|| panic!("no listener advertised as {bootstrap}"));
    let bound = listeners(var(&env, "KAFKA_LISTENERS"));
    assert!(
        bound
            .iter()
            .any(|(name, _, p)| name == &internal.0 && p == port),
        "listener {} is not bound to port {port}: {bound:?}",
        internal.0
    );
    assert_eq!(var(&env, "KAFKA_INTER_BROKER_LISTENER_NAME"), internal.0);
}

/// Checks that a service sets every setting `launcher` writes into server.properties that
/// does not depend on its ports, folders or node.
#[track_caller]
fn assert_launcher_settings(env: &BTreeMap<String, String>, launcher: &str) {
    let script = read(launcher);
    let start = script
        .find("server.properties\" <<EOF\n")
        .unwrap_or_else(|| panic!("{launcher} writes no server.properties"));
    let config = &script[start..];
    let config = &config[config.find('\n').unwrap() + 1..config.find("\nEOF").unwrap()];
    let fixed: Vec<(&str, &str)> = config
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, v)| !v.contains('$') && !k.contains("listener"))
        .collect();
    assert!(fixed.len() >= 10, "{fixed:?}");
    for (property, value) in fixed {
        let name = env_name(property);
        assert_eq!(
            env.get(&name).map(String::as_str),
            Some(value),
            "{name} ({launcher}'s {property}={value})"
        );
    }
}

#[test]
fn kafka_is_one_kraft_node_with_the_launchers_settings() {
    let compose = compose();
    let env = environment(service(&compose, "kafka"));
    assert_eq!(var(&env, "KAFKA_PROCESS_ROLES"), "broker,controller");
    let node = var(&env, "KAFKA_NODE_ID");
    let voters = var(&env, "KAFKA_CONTROLLER_QUORUM_VOTERS");
    let controller = var(&env, "KAFKA_CONTROLLER_LISTENER_NAMES");
    let (voter_id, voter_address) = voters.split_once('@').expect("id@host:port");
    assert_eq!(voter_id, node, "the one voter is this node");
    let voter_port = voter_address.rsplit_once(':').expect("host:port").1;
    let bound = listeners(var(&env, "KAFKA_LISTENERS"));
    assert!(
        bound
            .iter()
            .any(|(name, _, port)| name == controller && port == voter_port),
        "the quorum voter {voters} is no {controller} listener: {bound:?}"
    );
    let protocols = var(&env, "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP");
    for (name, _, _) in &bound {
        assert!(
            protocols
                .split(',')
                .any(|p| p.starts_with(&format!("{name}:"))),
            "{name} has no security protocol in {protocols}"
        );
    }

    // Every setting the launcher writes that does not depend on its ports or folders: one
    // replica for internal topics, no auto-creation, no rebalance delay, …
    assert_launcher_settings(&env, "scripts/kafka-local");
    for required in [
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ] {
        assert_eq!(var(&env, required), "1", "{required}");
    }
    assert_eq!(var(&env, "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"), "0");
    assert_eq!(var(&env, "KAFKA_AUTO_CREATE_TOPICS_ENABLE"), "false");
}

#[test]
fn kafka_has_a_healthcheck_that_asks_the_broker() {
    let compose = compose();
    let check = &service(&compose, "kafka")["healthcheck"];
    let test = strings(&check["test"]).join(" ");
    assert!(
        test.contains("kafka-broker-api-versions.sh") && test.contains("localhost:9092"),
        "{test}"
    );
    for key in ["interval", "timeout", "retries"] {
        assert!(check.get(key).is_some(), "the healthcheck has no {key}");
    }
}

#[test]
fn kafka_keeps_its_data_in_a_named_volume() {
    let compose = compose();
    let kafka = service(&compose, "kafka");
    let dir = var(&environment(kafka), "KAFKA_LOG_DIRS").to_string();
    let mounts = strings(&kafka["volumes"]);
    let mount = mounts
        .iter()
        .find(|m| m.ends_with(&format!(":{dir}")))
        .unwrap_or_else(|| panic!("nothing is mounted on the log dir {dir}: {mounts:?}"));
    let volume = mount.split(':').next().unwrap();
    assert!(
        compose["volumes"].get(volume).is_some(),
        "{volume} is no named volume"
    );
}

/// The nodes of the `cluster` profile, by node id.
const CLUSTER: [(&str, &str); 3] = [("1", "kafka-1"), ("2", "kafka-2"), ("3", "kafka-3")];

#[test]
fn the_cluster_profile_is_three_kraft_nodes_with_the_cluster_launchers_settings() {
    let compose = compose();
    let version = launcher_kafka_version();
    let single = environment(service(&compose, "kafka"));
    let mut cluster_ids = Vec::new();
    for (id, name) in CLUSTER {
        let node = service(&compose, name);
        // Only with `--profile cluster`: `just up` keeps starting the single node alone.
        assert_eq!(strings(&node["profiles"]), ["cluster"], "{name}");
        assert_eq!(
            node["image"].as_str(),
            Some(&*format!("apache/kafka:{version}")),
            "{name}"
        );
        let env = environment(node);
        assert_eq!(var(&env, "KAFKA_NODE_ID"), id, "{name}");
        assert_eq!(var(&env, "KAFKA_PROCESS_ROLES"), "broker,controller");
        cluster_ids.push(var(&env, "CLUSTER_ID").to_string());
        assert_launcher_settings(&env, "scripts/kafka-cluster");
        for (setting, value) in [
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "3"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "2"),
        ] {
            assert_eq!(var(&env, setting), value, "{name}: {setting}");
        }

        // Every voter is a node of the profile, found by its host name on its CONTROLLER
        // listener, with the voter's id as its node id.
        let controller = var(&env, "KAFKA_CONTROLLER_LISTENER_NAMES");
        let voters = var(&env, "KAFKA_CONTROLLER_QUORUM_VOTERS");
        let voters: Vec<(&str, &str)> = voters
            .split(',')
            .map(|v| v.split_once('@').expect("id@host:port"))
            .collect();
        assert_eq!(voters.len(), 3, "{name}: three voters");
        for (voter, address) in voters {
            let (host, port) = address.rsplit_once(':').expect("host:port");
            let (_, other) = CLUSTER
                .iter()
                .find(|(i, _)| *i == voter)
                .unwrap_or_else(|| panic!("voter {voter} is no node of the profile"));
            let other = service(&compose, other);
            assert_eq!(other["hostname"].as_str(), Some(host), "voter {voter}");
            let bound = listeners(var(&environment(other), "KAFKA_LISTENERS"));
            assert!(
                bound.iter().any(|(l, _, p)| l == controller && p == port),
                "voter {voter} at {address} is no {controller} listener: {bound:?}"
            );
        }

        // Clients on the host reach it on a published port; the other nodes on an internal
        // listener under its host name.
        let advertised = listeners(var(&env, "KAFKA_ADVERTISED_LISTENERS"));
        let bound = listeners(var(&env, "KAFKA_LISTENERS"));
        let published = strings(&node["ports"]);
        let host = advertised
            .iter()
            .find(|(_, h, p)| h == "localhost" && published.contains(&format!("{p}:{p}")))
            .unwrap_or_else(|| panic!("{name}: no listener advertised on a published port"));
        assert!(
            bound.iter().any(|(l, _, p)| *l == host.0 && *p == host.2),
            "{name}: {} is not bound: {bound:?}",
            host.0
        );
        let inter = var(&env, "KAFKA_INTER_BROKER_LISTENER_NAME");
        assert!(
            advertised
                .iter()
                .any(|(l, h, _)| l == inter && node["hostname"].as_str() == Some(h.as_str())),
            "{name}: the inter-broker listener {inter} is not advertised under its host name"
        );
        let check = strings(&node["healthcheck"]["test"]).join(" ");
        assert!(check.contains(&format!("localhost:{}", host.2)), "{check}");

        // Its own data, in a named volume of its own.
        let dir = var(&env, "KAFKA_LOG_DIRS");
        let volume = strings(&node["volumes"])
            .iter()
            .find_map(|m| m.strip_suffix(&format!(":{dir}")).map(str::to_string))
            .unwrap_or_else(|| panic!("{name}: nothing is mounted on {dir}"));
        assert!(compose["volumes"].get(&volume).is_some(), "{volume}");
        assert_eq!(volume, format!("{name}-data"));
    }
    cluster_ids.dedup();
    assert_eq!(cluster_ids.len(), 1, "one cluster id for the three nodes");
    assert_ne!(
        Some(cluster_ids[0].as_str()),
        single.get("CLUSTER_ID").map(String::as_str),
        "the cluster is not the single node's"
    );

    // __consumer_offsets gets min.insync.replicas=2 from a one-shot service, as the
    // launcher's readiness check gives it.
    let init = service(&compose, "kafka-cluster-init");
    assert_eq!(strings(&init["profiles"]), ["cluster"]);
    let command = strings(&init["command"]).join(" ");
    assert!(
        command.contains("--entity-name __consumer_offsets")
            && command.contains("min.insync.replicas=2"),
        "{command}"
    );
}

/// The services of the `monitoring` profile that run stockstream itself.
const STOCKSTREAM_SERVICES: [&str; 5] = [
    "stockstream-topic",
    "produce",
    "aggregate",
    "store",
    "dashboard",
];

/// A service's volume mounts, `HOST:CONTAINER[:OPTIONS]`, as (host, container).
fn mounts(service: &Value) -> Vec<(String, String)> {
    strings(&service["volumes"])
        .iter()
        .filter_map(|m| {
            let mut parts = m.split(':');
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

/// The host path (relative to the repository) mounted at `container` in `service`.
#[track_caller]
fn mounted_at(service: &Value, container: &str) -> String {
    mounts(service)
        .into_iter()
        .find(|(_, c)| c == container)
        .map(|(host, _)| host.trim_start_matches("./").to_string())
        .unwrap_or_else(|| panic!("nothing is mounted at {container}"))
}

/// The value after `flag` in a service's command.
fn flag_value(service: &Value, flag: &str) -> Option<String> {
    let command = strings(&service["command"]);
    let at = command.iter().position(|w| w == flag)?;
    command.get(at + 1).cloned()
}

/// The Grafana dashboards of the repository, parsed.
fn dashboards() -> Vec<(String, serde_json::Value)> {
    let dir = repo_root().join("deploy/grafana/dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("deploy/grafana/dashboards") {
        let path = entry.expect("a dashboard file").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("reading a dashboard");
            let doc = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
            out.push((path.display().to_string(), doc));
        }
    }
    assert!(!out.is_empty(), "no dashboard in {}", dir.display());
    out
}

/// Every query (PromQL) of every panel of the repository's dashboards.
pub fn dashboard_queries() -> Vec<String> {
    let mut out = Vec::new();
    for (_, doc) in dashboards() {
        for panel in doc["panels"].as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.extend(target["expr"].as_str().map(str::to_string));
            }
        }
    }
    out
}

/// The metric names a query uses: its identifiers that begin like stockstream's or the
/// process metrics.
pub fn metric_names(query: &str) -> Vec<String> {
    query
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("stockstream_") || w.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_monitoring_profile_runs_the_pipeline_built_from_the_containerfile() {
    let compose = compose();
    for name in STOCKSTREAM_SERVICES
        .iter()
        .chain(&["prometheus", "grafana"])
    {
        let s = service(&compose, name);
        assert_eq!(strings(&s["profiles"]), ["monitoring"], "{name}");
    }
    let kafka_env = environment(service(&compose, "kafka"));
    let internal: Vec<String> = listeners(var(&kafka_env, "KAFKA_ADVERTISED_LISTENERS"))
        .into_iter()
        .map(|(_, host, port)| format!("{host}:{port}"))
        .collect();
    let image = service(&compose, "produce")["image"]
        .as_str()
        .map(str::to_string);
    for name in STOCKSTREAM_SERVICES {
        let s = service(&compose, name);
        // Every one builds the one image, so no compose tool tries to pull it.
        assert_eq!(
            s["build"]["dockerfile"].as_str(),
            Some("Containerfile"),
            "{name}"
        );
        assert_eq!(s["build"]["context"].as_str(), Some("."), "{name}");
        assert_eq!(s["image"].as_str().map(str::to_string), image, "{name}");
        let brokers = flag_value(s, "-b").unwrap_or_else(|| panic!("{name} has no -b"));
        assert!(
            brokers != "localhost:9092" && internal.contains(&brokers),
            "{name} reaches Kafka at {brokers}, which is not an advertised listener inside the \
             compose network ({internal:?})"
        );
    }
    let containerfile = read("Containerfile");
    let stages = containerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "a multi-stage build: {stages} stages");
    assert!(containerfile.contains("cargo build --release --locked"));
    assert!(containerfile.contains("COPY --from=build"));
    assert!(containerfile.contains(r#"ENTRYPOINT ["stockstream"]"#));
    for (name, prefix) in [
        ("prometheus", "prom/prometheus:v"),
        ("grafana", "grafana/grafana:"),
    ] {
        let image = service(&compose, name)["image"]
            .as_str()
            .unwrap_or_default();
        assert!(
            image.starts_with(prefix) && !image.ends_with(":latest"),
            "{name}: a pinned {prefix}… image, not {image}"
        );
    }
}

#[test]
fn prometheus_scrapes_produce_aggregate_store_and_the_dashboard_at_their_metrics_ports() {
    let compose = compose();
    let mut expected = Vec::new();
    for name in ["produce", "aggregate", "store", "dashboard"] {
        let s = service(&compose, name);
        let address = flag_value(s, "--metrics-addr")
            .unwrap_or_else(|| panic!("{name} serves no metrics (--metrics-addr)"));
        let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
        assert_eq!(
            host, "0.0.0.0",
            "{name}: reachable from the other containers"
        );
        assert!(
            strings(&s["ports"]).contains(&format!("{port}:{port}")),
            "{name} does not publish its metrics port {port}"
        );
        expected.push(format!("{name}:{port}"));
    }
    let prometheus = service(&compose, "prometheus");
    assert!(strings(&prometheus["ports"]).contains(&"9090:9090".to_string()));
    let config_file = mounted_at(prometheus, "/etc/prometheus/prometheus.yml");
    let config: Value = serde_norway::from_str(&read(&config_file))
        .unwrap_or_else(|e| panic!("{config_file} is not valid YAML: {e}"));
    let mut targets = Vec::new();
    for job in config["scrape_configs"].as_sequence().into_iter().flatten() {
        for group in job["static_configs"].as_sequence().into_iter().flatten() {
            targets.extend(strings(&group["targets"]));
        }
    }
    targets.sort();
    expected.sort();
    assert_eq!(targets, expected, "{config_file}'s targets");
}

#[test]
fn grafana_is_provisioned_with_prometheus_and_the_pipeline_dashboard() {
    let compose = compose();
    let grafana = service(&compose, "grafana");
    assert!(strings(&grafana["ports"]).contains(&"3000:3000".to_string()));
    let provisioning = mounted_at(grafana, "/etc/grafana/provisioning");
    let datasources: Value =
        serde_norway::from_str(&read(&format!("{provisioning}/datasources/prometheus.yml")))
            .expect("the data source file is YAML");
    let source = &datasources["datasources"][0];
    assert_eq!(source["type"].as_str(), Some("prometheus"));
    // The prometheus service, at the port its container listens on.
    assert_eq!(source["url"].as_str(), Some("http://prometheus:9090"));
    let uid = source["uid"].as_str().expect("a data source uid");

    let providers: Value =
        serde_norway::from_str(&read(&format!("{provisioning}/dashboards/stockstream.yml")))
            .expect("the dashboard provider file is YAML");
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .expect("the provider's path");
    assert_eq!(
        mounted_at(grafana, path),
        "deploy/grafana/dashboards",
        "the provider reads where the dashboards are mounted"
    );

    for (file, doc) in dashboards() {
        for panel in doc["panels"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or_default();
            assert_eq!(
                panel["datasource"]["uid"].as_str(),
                Some(uid),
                "{file}: {title}"
            );
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{file}: {title} has no query");
            for t in targets {
                assert_eq!(
                    t["datasource"]["uid"].as_str(),
                    Some(uid),
                    "{file}: {title}"
                );
            }
        }
    }
    let queries = dashboard_queries().join("\n");
    for (what, metric) in [
        ("ticks/s", "stockstream_aggregate_records_read_total"),
        ("lag", "stockstream_aggregate_consumer_lag_records"),
        ("bars", "stockstream_aggregate_bars_emitted_total"),
        (
            "dead letters by reason",
            "stockstream_aggregate_dead_letters_total",
        ),
        (
            "commit duration",
            "stockstream_aggregate_commit_duration_seconds_bucket",
        ),
    ] {
        assert!(queries.contains(metric), "no panel shows {what} ({metric})");
    }
    // Every name is of produce, aggregate, store or the process: tests/integration/metrics.rs
    // finds each in what those serve.
    for name in queries.lines().flat_map(metric_names) {
        assert!(
            [
                "stockstream_produce_",
                "stockstream_aggregate_",
                "stockstream_store_",
                "process_",
            ]
            .iter()
            .any(|p| name.starts_with(p)),
            "{name}"
        );
    }
}

/// A service's `depends_on`, in either form: service → its condition (none in the short form).
fn dependencies(service: &Value) -> BTreeMap<String, Option<String>> {
    match &service["depends_on"] {
        Value::Mapping(map) => map
            .iter()
            .filter_map(|(name, how)| {
                Some((text(name)?, how["condition"].as_str().map(str::to_string)))
            })
            .collect(),
        list => strings(list).into_iter().map(|name| (name, None)).collect(),
    }
}

/// The value of the first `NAME=value` line of a script.
#[track_caller]
fn script_setting(script: &str, name: &str) -> String {
    read(script)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{script} sets no {name}"))
        .to_string()
}

#[test]
fn store_keeps_the_bars_in_the_postgres_service_once_it_accepts_connections() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    assert_eq!(strings(&postgres["profiles"]), ["monitoring"]);
    let image = postgres["image"].as_str().unwrap_or_default();
    let version = image
        .strip_prefix("postgres:")
        .and_then(|tag| tag.split('-').next())
        .unwrap_or_default();
    let parts: Vec<&str> = version.split('.').collect();
    assert!(
        parts.len() == 2 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
        "the official image pinned to a release, postgres:MAJOR.MINOR[-variant], not {image}"
    );
    // From the host on 127.0.0.1 alone, with the local launcher's port, role, password and
    // database: one URL serves either.
    let port = script_setting("scripts/postgres-local", "PORT");
    assert_eq!(
        strings(&postgres["ports"]),
        [format!("127.0.0.1:{port}:5432")]
    );
    let env = environment(postgres);
    for (key, setting) in [
        ("POSTGRES_USER", "ROLE"),
        ("POSTGRES_PASSWORD", "DEFAULT_PASSWORD"),
        ("POSTGRES_DB", "DATABASE"),
    ] {
        let launcher = script_setting("scripts/postgres-local", setting);
        assert_eq!(env.get(key), Some(&launcher), "{key}");
    }
    // Its data in a named volume, where the image keeps it.
    let volume = strings(&postgres["volumes"])
        .iter()
        .find_map(|m| {
            m.strip_suffix(":/var/lib/postgresql/data")
                .map(str::to_string)
        })
        .expect("a volume at /var/lib/postgresql/data");
    assert!(
        compose["volumes"].get(&volume).is_some(),
        "{volume} is no named volume"
    );
    let check = strings(&postgres["healthcheck"]["test"]).join(" ");
    assert!(
        check.contains("pg_isready") && check.contains("-h 127.0.0.1"),
        "healthy once it accepts connections over TCP: {check}"
    );

    // store, and the dashboard for its history, reach it by its service name inside the
    // compose network.
    for name in ["store", "dashboard"] {
        let s = service(&compose, name);
        let url = environment(s)
            .get("STOCKSTREAM_POSTGRES_URL")
            .cloned()
            .unwrap_or_else(|| panic!("{name} sets STOCKSTREAM_POSTGRES_URL"));
        assert_eq!(
            url,
            format!(
                "postgres://{}:{}@postgres:5432/{}",
                env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
            ),
            "{name}"
        );
        let after = dependencies(s);
        assert_eq!(
            after.get("postgres"),
            Some(&Some("service_healthy".to_string())),
            "{name} waits until PostgreSQL is healthy: {after:?}"
        );
        assert!(
            after.contains_key("aggregate"),
            "{name} shows or stores aggregate's bars: {after:?}"
        );
        assert_eq!(s["restart"].as_str(), Some("on-failure"), "{name}");
    }
    let command = strings(&service(&compose, "store")["command"]);
    assert_eq!(
        command.get(2).map(String::as_str),
        Some("store"),
        "the command after -b HOST:PORT: {command:?}"
    );
    // The page, for the host's browser, on every interface inside its container.
    let dashboard = service(&compose, "dashboard");
    assert_eq!(
        flag_value(dashboard, "--listen").as_deref(),
        Some("0.0.0.0:8050")
    );
    assert!(strings(&dashboard["ports"]).contains(&"8050:8050".to_string()));
}
