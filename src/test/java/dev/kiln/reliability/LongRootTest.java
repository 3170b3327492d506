package dev.kiln.reliability;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * kiln under a root with a long path, such as JUnit's own {@code /tmp/junit-<19 digits>}: a unix socket path holds at
 * most 107 bytes, and the shims' sockets sit deep below the root, so every socket kiln connects to must be reachable
 * whatever the root's length.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LongRootTest extends DaemonProcessTest {




    @Test
    void runLogsAndExecWorkUnderALongRoot() {
        String image = busybox();
        kiln.ok("run", "-d", "--name", "long", image, "sh", "-c", "echo up; sleep 60");
        KilnCli.Result exec = kiln.process(Duration.ofSeconds(30), "exec", "long", "echo", "from-exec");
        assertThat(exec.exitCode()).as("exec under " + root + " (" + root.toString().length() + " bytes): " + exec)
                .isZero();
        assertThat(exec.out()).isEqualTo("from-exec\n");
        KilnCli.Result attached = kiln.process(Duration.ofSeconds(30), "run", "--rm", image, "echo", "attached");
        assertThat(attached.exitCode()).as(attached.toString()).isZero();
        assertThat(attached.out()).isEqualTo("attached\n");
        kiln.ok("rm", "-f", "long");
        assertThat(Leftovers.mountsUnder(root)).isEmpty();
        assertThat(Leftovers.sandboxDirs(root)).isEmpty();
    }
}
