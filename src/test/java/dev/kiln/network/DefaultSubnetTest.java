package dev.kiln.network;

import dev.kiln.KilnException;
import dev.kiln.api.daemon.Kilnd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@code default-subnet} in config.yaml chooses the kiln network's subnet when its conflist is first written. */
class DefaultSubnetTest {

    @TempDir
    Path root;

    @Test
    void theConfiguredSubnetIsWrittenOnceAndKept() throws Exception {
        Path config = Files.writeString(root.resolve("config.yaml"), "default-subnet: 10.123.45.0/24\n");
        Kilnd.Options o = Kilnd.Options.read(config, root.resolve("store"), root.resolve("run"), List.of(), null,
                false);
        assertThat(o.defaultSubnet()).isEqualTo("10.123.45.0/24");
        assertThat(new Networks(o.root(), o.defaultSubnet()).get("kiln").subnet()).isEqualTo("10.123.45.0/24");
        assertThat(Files.readString(o.root().resolve("network/kiln.conflist"))).contains("10.123.45.0/24");
        // a later, different setting does not move a network whose addresses may be in use
        assertThat(new Networks(o.root(), "10.124.0.0/24").get("kiln").subnet()).isEqualTo("10.123.45.0/24");
    }

    @Test
    void aBadOrClashingSubnetIsRefusedWithOneLine() {
        assertThatThrownBy(() -> KilnNetwork.forRoot(root.resolve("a"), "10.1.2.3/24"))
                .isInstanceOf(KilnException.class).hasMessageContaining("it should be 10.1.2.0/24");
        List<String> routes = Subnets.hostRoutes().stream().filter(r -> r.contains("/")
                && Integer.parseInt(r.substring(r.indexOf('/') + 1)) >= 8
                && Integer.parseInt(r.substring(r.indexOf('/') + 1)) <= 30).toList();
        org.junit.jupiter.api.Assumptions.assumeFalse(routes.isEmpty(), "the host has no IPv4 subnet route to clash with");
        String taken = routes.getFirst();
        assertThatThrownBy(() -> KilnNetwork.forRoot(root.resolve("b"), taken))
                .isInstanceOf(KilnException.class).hasMessageContaining("overlaps the host's route");
        assertThat(root.resolve("b/network/kiln.conflist")).doesNotExist();
    }
}
