// Answers scripts/kafka-cluster's questions about a running cluster with Kafka's own admin
// client, in one JVM per question (a loop in a shell would start a JVM every half second).
//
//   ready  BOOTSTRAP NODE=HOST:PORT,… TIMEOUT_S [--internal]
//       Waits until each named node answers a metadata request on its own port (a broker
//       answers only once the controllers let it serve), every node id is registered, and
//       every partition of every topic has a leader and all its replicas in sync. With
//       --internal it first makes the replicated readiness topic and Kafka's internal
//       topics (__consumer_offsets, __transaction_state) exist, with min.insync.replicas=2.
//       Exit 0 when ready, 1 (saying what is still missing) when TIMEOUT_S runs out.
//   status BOOTSTRAP NODE=HOST:PORT,…
//       Prints the registered brokers, the controller quorum and the partitions that are
//       under-replicated or without a leader. Exit 0 when all is well, 1 otherwise.
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;

public class ClusterCheck {
    /** The topic whose three in-sync replicas show that the cluster replicates. */
    static final String PROBE = "__kafka_cluster_ready";
    static final String OFFSETS = "__consumer_offsets";
    static final String TRANSACTIONS = "__transaction_state";

    static Admin admin(String bootstrap) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        return Admin.create(props);
    }

    /** node id → host:port, from "1=127.0.0.1:19092,2=…". */
    static Map<Integer, String> nodes(String arg) {
        Map<Integer, String> out = new TreeMap<>();
        for (String part : arg.split(",")) {
            String[] kv = part.split("=", 2);
            out.put(Integer.parseInt(kv[0]), kv[1]);
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[1];
        Map<Integer, String> nodes = nodes(args[2]);
        switch (args[0]) {
            case "ready" -> {
                boolean internal = args.length > 4 && args[4].equals("--internal");
                System.exit(ready(bootstrap, nodes, Long.parseLong(args[3]), internal));
            }
            case "status" -> System.exit(status(bootstrap, nodes));
            default -> {
                System.err.println("ClusterCheck: unknown question " + args[0]);
                System.exit(2);
            }
        }
    }

    static int ready(String bootstrap, Map<Integer, String> nodes, long timeoutS, boolean internal)
            throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutS);
        long nextReport = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        String missing = "";
        boolean prepared = !internal;
        try (Admin admin = admin(bootstrap)) {
            while (System.nanoTime() < deadline) {
                try {
                    missing = silentNodes(nodes);
                    if (missing.isEmpty() && !prepared) {
                        prepare(admin, nodes.size());
                        prepared = true;
                    }
                    if (missing.isEmpty()) {
                        missing = unregistered(admin, nodes.keySet());
                    }
                    if (missing.isEmpty()) {
                        missing = String.join("; ", unhealthy(admin, true));
                    }
                    if (missing.isEmpty()) {
                        return 0;
                    }
                } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                    missing = "the cluster did not answer: " + cause(e);
                }
                if (System.nanoTime() > nextReport) {
                    System.err.println("kafka-cluster: still waiting: " + missing);
                    nextReport = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
                }
                Thread.sleep(250);
            }
        }
        System.err.println("kafka-cluster: not ready after " + timeoutS + "s: " + missing);
        return 1;
    }

    /** The nodes that do not answer a metadata request on their own port, or "". */
    static String silentNodes(Map<Integer, String> nodes) {
        List<String> silent = new ArrayList<>();
        for (Map.Entry<Integer, String> node : nodes.entrySet()) {
            try (Admin one = admin(node.getValue())) {
                one.describeCluster().nodes().get(3, TimeUnit.SECONDS);
            } catch (Exception e) {
                silent.add("node " + node.getKey() + " at " + node.getValue());
            }
        }
        return silent.isEmpty() ? "" : "no answer yet from " + String.join(", ", silent);
    }

    /** The expected node ids the cluster does not list as brokers, or "". */
    static String unregistered(Admin admin, Set<Integer> ids) throws Exception {
        Set<Integer> listed = admin.describeCluster().nodes().get(5, TimeUnit.SECONDS).stream()
                .map(Node::id).collect(Collectors.toSet());
        Set<Integer> absent = new TreeSet<>(ids);
        absent.removeAll(listed);
        return absent.isEmpty() ? "" : "brokers " + absent + " not registered";
    }

    /**
     * Makes the readiness topic and the internal topics exist now, while every node is up:
     * an internal topic is made at its first use, and with a node down it could not get its
     * three replicas. A FindCoordinator request makes the broker create it.
     */
    static void prepare(Admin admin, int replicas) throws Exception {
        NewTopic probe = new NewTopic(PROBE, replicas, (short) replicas)
                .configs(Map.of("min.insync.replicas", "2"));
        try {
            admin.createTopics(List.of(probe)).all().get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) throw e;
        }
        awaitTopic(admin, OFFSETS, () -> admin.listConsumerGroupOffsets("kafka-cluster-probe")
                .partitionsToOffsetAndMetadata().get(5, TimeUnit.SECONDS));
        awaitTopic(admin, TRANSACTIONS, () -> admin.describeTransactions(List.of("kafka-cluster-probe"))
                .all().get(5, TimeUnit.SECONDS));
        // Kafka sets the offsets topic's min.insync.replicas from the brokers' default (1,
        // so that a topic made with one replica stays writable); the topic gets its own.
        ConfigResource offsets = new ConfigResource(ConfigResource.Type.TOPIC, OFFSETS);
        AlterConfigOp op = new AlterConfigOp(new ConfigEntry("min.insync.replicas", "2"),
                AlterConfigOp.OpType.SET);
        admin.incrementalAlterConfigs(Map.of(offsets, List.of(op))).all().get(30, TimeUnit.SECONDS);
    }

    interface Call {
        void run() throws Exception;
    }

    /** Asks `use` (which makes the broker create `topic`) until the topic exists. */
    static void awaitTopic(Admin admin, String topic, Call use) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!admin.listTopics(new ListTopicsOptions().listInternal(true)).names()
                .get(5, TimeUnit.SECONDS).contains(topic)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the brokers did not create " + topic + " within 60s");
            }
            try {
                use.run();
            } catch (Exception e) {
                // Expected: no such group or transaction; the coordinator is being made.
            }
            Thread.sleep(200);
        }
    }

    /** Partitions without a leader, or with replicas out of sync, as readable lines. */
    static List<String> unhealthy(Admin admin, boolean brief) throws Exception {
        Set<String> names = admin.listTopics(new ListTopicsOptions().listInternal(true)).names()
                .get(5, TimeUnit.SECONDS);
        Collection<TopicDescription> topics = admin.describeTopics(names).allTopicNames()
                .get(10, TimeUnit.SECONDS).values();
        List<String> out = new ArrayList<>();
        for (TopicDescription t : topics) {
            for (TopicPartitionInfo p : t.partitions()) {
                List<Integer> replicas = p.replicas().stream().map(Node::id).toList();
                List<Integer> isr = p.isr().stream().map(Node::id).toList();
                if (p.leader() == null || p.leader().id() < 0) {
                    out.add(t.name() + "/" + p.partition() + " has no leader (replicas " + replicas + ")");
                } else if (isr.size() < replicas.size()) {
                    out.add(t.name() + "/" + p.partition() + " has replicas " + replicas + ", in sync "
                            + isr);
                }
            }
        }
        out.sort(null);
        if (brief && out.size() > 3) {
            int more = out.size() - 3;
            out = new ArrayList<>(out.subList(0, 3));
            out.add("and " + more + " more partitions");
        }
        return out;
    }

    static int status(String bootstrap, Map<Integer, String> nodes) {
        try (Admin admin = admin(bootstrap)) {
            Collection<Node> brokers = admin.describeCluster().nodes().get(5, TimeUnit.SECONDS);
            String listed = brokers.stream().sorted((a, b) -> a.id() - b.id())
                    .map(n -> n.id() + "@" + n.host() + ":" + n.port())
                    .collect(Collectors.joining(", "));
            System.out.println("brokers registered: " + listed);
            int problems = 0;
            for (Integer id : nodes.keySet()) {
                if (brokers.stream().noneMatch(n -> n.id() == id)) {
                    System.out.println("broker " + id + " is not registered");
                    problems++;
                }
            }
            QuorumInfo quorum = admin.describeMetadataQuorum().quorumInfo().get(5, TimeUnit.SECONDS);
            long end = quorum.voters().stream().mapToLong(QuorumInfo.ReplicaState::logEndOffset)
                    .max().orElse(0);
            String voters = quorum.voters().stream()
                    .map(v -> v.replicaId() + (v.logEndOffset() < end ? " (behind by "
                            + (end - v.logEndOffset()) + ")" : ""))
                    .collect(Collectors.joining(", "));
            System.out.println("controller quorum: leader " + quorum.leaderId() + ", voters " + voters);
            List<String> unhealthy = unhealthy(admin, false);
            if (unhealthy.isEmpty()) {
                System.out.println("partitions: every one has a leader and all its replicas in sync");
            } else {
                System.out.println(unhealthy.size() + " partitions under-replicated or without a leader:");
                unhealthy.forEach(line -> System.out.println("  " + line));
            }
            return problems + unhealthy.size() == 0 ? 0 : 1;
        } catch (Exception e) {
            System.out.println("the cluster did not answer at " + bootstrap + ": " + cause(e));
            return 1;
        }
    }

    static String cause(Throwable e) {
        Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        return c.getClass().getSimpleName() + (c.getMessage() != null ? ": " + c.getMessage() : "");
    }
}
