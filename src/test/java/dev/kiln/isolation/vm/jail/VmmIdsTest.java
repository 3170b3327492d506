package dev.kiln.isolation.vm.jail;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.kiln.KilnException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The VMMs' ids: one per sandbox, kept across starts, never two sandboxes on one, free again after rm. */
class VmmIdsTest {

    @TempDir
    Path root;

    private Path sandbox(String id) throws Exception {
        return Files.createDirectories(root.resolve("sandboxes").resolve(id));
    }

    @Test
    void eachSandboxHoldsItsOwnIdUntilItIsRemoved() throws Exception {
        VmmIds ids = new VmmIds(root.resolve("vmm-ids"), new VmmIds.Range(100_000_000, 100_000_003));
        Set<Integer> taken = new HashSet<>();
        for (String id : new String[] {"a", "b", "c", "d"}) {
            int uid = ids.acquire(id, sandbox(id));
            assertThat(uid).isBetween(100_000_000, 100_000_003);
            assertThat(taken.add(uid)).as("never two sandboxes on one id").isTrue();
            assertThat(ids.acquire(id, sandbox(id))).as("the same at the next start").isEqualTo(uid);
            // a new kilnd (a new VmmIds) sees the same claims
            assertThat(new VmmIds(root.resolve("vmm-ids"), ids.range()).acquire(id, sandbox(id))).isEqualTo(uid);
        }
        assertThatThrownBy(() -> ids.acquire("e", sandbox("e"))).isInstanceOf(KilnException.class)
                .hasMessageContaining("every id of vmm-uid-range 100000000-100000003 is held");
        int b = ids.held(sandbox("b"));
        ids.release("b", sandbox("b"));
        assertThat(ids.held(sandbox("b"))).isNull();
        assertThat(ids.acquire("e", sandbox("e"))).as("b's id, free again").isEqualTo(b);
    }

    @Test
    void aClaimWhoseSandboxIsGoneIsTakenBack() throws Exception {
        VmmIds ids = new VmmIds(root.resolve("vmm-ids"), new VmmIds.Range(100_000_000, 100_000_000));
        ids.acquire("gone", sandbox("gone"));
        Files.delete(sandbox("gone").resolve("vmm-id"));
        Files.delete(sandbox("gone")); // removed by hand, or kilnd died between its writes
        assertThat(ids.acquire("next", sandbox("next"))).isEqualTo(100_000_000);
    }

    @Test
    void aRangeHoldingSomeonesIdIsRefused() {
        VmmIds.Range.parse(VmmIds.DEFAULT_RANGE).checkUnowned(); // the default owns nothing here
        assertThatThrownBy(() -> new VmmIds.Range(0, 10)).hasMessageContaining("1000 <= FIRST");
        assertThatThrownBy(() -> VmmIds.Range.parse("many")).hasMessageContaining("FIRST-LAST");
        // root's group is 0, nobody's 65534: a range around nobody holds an /etc/passwd entry on any Debian host
        assertThatThrownBy(() -> new VmmIds.Range(65_000, 66_000).checkUnowned()).isInstanceOf(KilnException.class)
                .hasMessageContaining("65534").hasMessageContaining("nobody on this host owns");
    }
}
