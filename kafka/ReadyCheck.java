import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.common.Node;

/**
 * Waits until a Kafka broker answers real requests: a DescribeCluster request
 * that returns at least one node and a controller, followed by a topic listing.
 *
 * <p>Usage: {@code ReadyCheck BOOTSTRAP TIMEOUT_SECONDS [BROKER_PID]}. Exits 0 and
 * prints the cluster id once the broker answers; exits 1 when the time runs out,
 * and 3 as soon as the process BROKER_PID has ended (so a broker that failed to
 * start is reported at once rather than after the whole timeout).
 */
public final class ReadyCheck {
    private ReadyCheck() {}

    /**
     * Whether process {@code pid} runs. A broker that died while its starter is
     * still waiting stays a zombie until reaped, so on Linux the state in
     * /proc/PID/stat is read: a zombie has ended.
     */
    private static boolean alive(long pid) {
        Path stat = Path.of("/proc", Long.toString(pid), "stat");
        try {
            String s = Files.readString(stat);
            int close = s.lastIndexOf(')');
            return close >= 0 && close + 2 < s.length() && s.charAt(close + 2) != 'Z';
        } catch (NoSuchFileException e) {
            return false;
        } catch (IOException e) {
            return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: ReadyCheck BOOTSTRAP TIMEOUT_SECONDS [BROKER_PID]");
            System.exit(2);
        }
        String bootstrap = args[0];
        Instant deadline = Instant.now().plusSeconds(Long.parseLong(args[1]));
        Long pid = args.length == 3 ? Long.valueOf(args[2]) : null;

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "tidemark-ready-check");

        String lastError = "no answer";
        try (Admin admin = Admin.create(props)) {
            while (Instant.now().isBefore(deadline)) {
                if (pid != null && !alive(pid)) {
                    System.err.println("broker process " + pid + " has exited");
                    System.exit(3);
                }
                try {
                    DescribeClusterResult cluster = admin.describeCluster();
                    Collection<Node> nodes = cluster.nodes().get(3, TimeUnit.SECONDS);
                    Node controller = cluster.controller().get(3, TimeUnit.SECONDS);
                    String clusterId = cluster.clusterId().get(3, TimeUnit.SECONDS);
                    if (!nodes.isEmpty() && controller != null && !controller.isEmpty()) {
                        admin.listTopics().names().get(3, TimeUnit.SECONDS);
                        System.out.println(clusterId);
                        return;
                    }
                    lastError = "cluster has no node or no controller yet";
                } catch (Exception e) {
                    lastError = e.toString();
                }
                Thread.sleep(Duration.ofMillis(250).toMillis());
            }
        }
        System.err.println("broker at " + bootstrap + " did not answer in time: " + lastError);
        System.exit(1);
    }
}
