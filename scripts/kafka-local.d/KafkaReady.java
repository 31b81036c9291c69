// Answers one question for scripts/kafka-local: does the broker at <bootstrap> answer a
// metadata request yet, within [seconds] (default 3)? An open port is not enough: KRaft
// accepts connections before the broker has registered and can serve clients. Exit 0 when
// it answers, 1 when it does not.
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class KafkaReady {
    public static void main(String[] args) throws Exception {
        int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Integer.toString(seconds * 1000 - 1000));
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Integer.toString(seconds * 1000));
        try (Admin admin = Admin.create(props)) {
            int nodes = admin.describeCluster().nodes().get(seconds, TimeUnit.SECONDS).size();
            admin.listTopics().names().get(seconds, TimeUnit.SECONDS);
            System.exit(nodes > 0 ? 0 : 1);
        } catch (Exception e) {
            System.exit(1);
        }
    }
}
