package dev.kiln.isolation.shim;

import dev.kiln.isolation.AttachConnection;
import dev.kiln.testing.Command;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/**
 * Builds kiln-shim into target/native (where {@link ShimBinary#locate} finds it next to target/classes) when it is
 * missing or older than its source, and cleans up the shims a test started.
 */
final class ShimFixture implements AutoCloseable {
    private static final Path NATIVE = Path.of("native").toAbsolutePath();
    private static final Path OUT = Path.of("target/native").toAbsolutePath();
    private static Path built;

    private final List<Shim> shims = new ArrayList<>();

    static synchronized Path binary() {
        if (built != null) return built;
        Assumptions.assumeTrue(Command.which("musl-gcc") != null || Command.which("gcc") != null,
                "no C compiler: install musl-tools (or gcc) to build kiln-shim");
        Command.require("make", "make");
        Path binary = OUT.resolve("kiln-shim");
        try {
            if (!Files.exists(binary) || Files.getLastModifiedTime(binary).compareTo(newestSource()) < 0) {
                Command.run(Duration.ofSeconds(120), List.of("make", "-C", NATIVE.toString(), "OUT=" + OUT));
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return built = binary;
    }

    /** The newest modification time among kiln-shim's sources (native/shim and native/common). */
    private static FileTime newestSource() throws IOException {
        FileTime newest = FileTime.fromMillis(0);
        for (Path dir : List.of(NATIVE.resolve("shim"), NATIVE.resolve("common"))) {
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) {
                    FileTime t = Files.getLastModifiedTime(f);
                    if (t.compareTo(newest) > 0) newest = t;
                }
            }
        }
        return newest;
    }

    Shim launch(Path dir, ShimOptions options, String... command) {
        Shim shim = Shim.launch(binary(), dir, options, List.of(command));
        shims.add(shim);
        return shim;
    }

    /** Kills what a test left running: the command's process group, then the shim. */
    @Override
    public void close() {
        for (Shim shim : shims) {
            if (!shim.alive()) continue;
            if (shim.exitStatus().isEmpty() && shim.started().isPresent()) {
                try {
                    Command.run("kill", "-KILL", "--", "-" + shim.started().get().pid());
                } catch (IllegalStateException e) {
                    // exited meanwhile
                }
            }
            ProcessHandle.of(shim.pid()).ifPresent(ProcessHandle::destroyForcibly);
        }
    }

    /** What one attach client received until the shim closed the connection. */
    record Received(String stdout, String stderr, String exit) {}

    static Received drain(AttachConnection connection) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        String exit = null;
        for (AttachConnection.Frame f; (f = connection.read()) != null; ) {
            switch (f.type()) {
                case AttachConnection.Frame.STDOUT -> out.writeBytes(f.payload());
                case AttachConnection.Frame.STDERR -> err.writeBytes(f.payload());
                case AttachConnection.Frame.EXIT -> exit = f.text();
                default -> throw new AssertionError("unexpected frame type " + f.type());
            }
        }
        return new Received(out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8), exit);
    }

    /** Field {@code index} (1-based, as in proc(5)) of /proc/PID/stat. */
    static long statField(long pid, int index) throws IOException {
        String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
        String[] rest = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(rest[index - 3]);
    }
}
