// Answers one question for scripts/kafka-local: does the broker at <bootstrap> answer a
// metadata request yet? An open port is not enough: KRaft accepts connections before the
// broker has registered and can serve clients. Exit 0 when it answers, 1 when it does not.
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class KafkaReady {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        try (Admin admin = Admin.create(props)) {
            int nodes = admin.describeCluster().nodes().get(3, TimeUnit.SECONDS).size();
            admin.listTopics().names().get(3, TimeUnit.SECONDS);
            System.exit(nodes > 0 ? 0 : 1);
        } catch (Exception e) {
            System.exit(1);
        }
    }
}
