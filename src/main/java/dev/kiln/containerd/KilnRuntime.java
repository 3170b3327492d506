package dev.kiln.containerd;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.isolation.RuntimeBinary;
import dev.kiln.isolation.oci.OciRuntime;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which kiln isolation runs a task, and the OCI runtime command line for it. Chosen, first match wins, by the OCI
 * annotation {@code io.kiln.isolation} in the bundle's config.json ({@code ctr run --annotation}, or a CRI pod
 * annotation the handler passes through), then the runtime config file named by the handler's options
 * ({@code ConfigPath}: a line {@code isolation = "gvisor"}), else {@code container}. runc keeps its state in the
 * bundle ({@code --root BUNDLE/kiln-root}) so containerd's removal of the bundle removes it; runsc keeps it beside
 * the namespace's bundles ({@code .kiln-runsc}, a hidden name containerd's task loader skips), because the
 * containers of a CRI pod join their sandbox through runsc's shared state.
 */
record KilnRuntime(String isolation, Path binary, List<String> globalFlags, Path root, Path bundle) {

    static final String ANNOTATION = "io.kiln.isolation";
    private static final Pattern CONFIG_LINE = Pattern.compile("^\\s*isolation\\s*=\\s*\"?([a-z]+)\"?\\s*$",
            Pattern.MULTILINE);

    static KilnRuntime choose(JsonNode spec, String configPath, Path bundle) {
        String isolation = spec.path("annotations").path(ANNOTATION).asText("");
        if (isolation.isEmpty() && configPath != null && !configPath.isEmpty()) {
            isolation = fromConfig(Path.of(configPath));
        }
        if (isolation.isEmpty()) isolation = "container";
        return of(isolation, spec, bundle);
    }

    static String fromConfig(Path file) {
        try {
            Matcher m = CONFIG_LINE.matcher(Files.readString(file));
            if (!m.find()) throw TtrpcServer.RpcError.invalid("runtime config " + file
                    + " names no isolation (add a line: isolation = \"container\"|\"gvisor\"|\"vm\")");
            return m.group(1);
        } catch (IOException e) {
            throw TtrpcServer.RpcError.invalid("cannot read runtime config " + file + ": " + e.getMessage());
        }
    }

    static KilnRuntime of(String isolation, JsonNode spec, Path bundle) {
        return switch (isolation) {
            case "container" -> new KilnRuntime(isolation, locate(OciRuntime.RUNC), List.of(),
                    bundle.resolve("kiln-root"), bundle);
            case "gvisor" -> {
                // runsc's netstack refuses to start on this kernel (DESIGN §4): inside a network namespace the
                // spec names (a CRI pod's), the Sentry uses that namespace's host sockets; else loopback only
                boolean podNetns = false;
                for (JsonNode ns : spec.path("linux").path("namespaces")) {
                    if (ns.path("type").asText().equals("network") && !ns.path("path").asText("").isEmpty()) {
                        podNetns = true;
                    }
                }
                yield new KilnRuntime(isolation, locate(OciRuntime.RUNSC), List.of("--platform=ptrace",
                        podNetns ? "--network=host" : "--network=none"), bundle.getParent().resolve(".kiln-runsc"),
                        bundle);
            }
            // no OCI runtime: VmTasks boots a microVM on the bundle's rootfs (its files in BUNDLE/kiln-vm)
            case "vm" -> new KilnRuntime(isolation, null, List.of(), VmTasks.dir(bundle), bundle);
            default -> throw TtrpcServer.RpcError.invalid("unknown kiln isolation " + isolation
                    + " (use container, gvisor or vm)");
        };
    }

    private static Path locate(OciRuntime runtime) {
        return RuntimeBinary.of(runtime.binary(), "apt-get install " + runtime.binary(), Map.of()).locate()
                .orElseThrow(() -> TtrpcServer.RpcError.precondition(runtime.binary()
                        + " is not installed (run scripts/setup)"));
    }

    List<String> command(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(binary.toString());
        cmd.add("--root");
        cmd.add(root.toString());
        // the runtime's own errors go to this file, not to the task's stderr (which is the client's fifo)
        cmd.add("--log");
        cmd.add(bundle.resolve("runtime.log").toString());
        cmd.add("--log-format");
        cmd.add("json");
        cmd.addAll(globalFlags);
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** What {@code delete} needs to find the runtime again without the daemon: one line in the bundle. */
    String record() {
        return isolation + "\n";
    }
}
