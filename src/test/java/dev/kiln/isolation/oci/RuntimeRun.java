package dev.kiln.isolation.oci;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a bundle in the foreground with the real runc or runsc and always deletes the container and its cgroups
 * afterwards.
 */
final class RuntimeRun {
    private static final long TIMEOUT_SECONDS = 60;

    record Result(int exitCode, String stdout, String stderr) {
        String out() {
            return stdout.strip();
        }
    }

    private RuntimeRun() {
    }

    static Result runc(Path stateRoot, Bundle bundle, String id) throws IOException, InterruptedException {
        List<String> global = List.of("runc", "--root", stateRoot.toString());
        return run(global, bundle, id);
    }

    static Result runsc(Path stateRoot, Bundle bundle, String id) throws IOException, InterruptedException {
        List<String> global = List.of("runsc", "--root", stateRoot.toString(), "--platform=ptrace", "--network=none");
        return run(global, bundle, id);
    }

    static Result runscWithOciSeccomp(Path stateRoot, Bundle bundle, String id)
            throws IOException, InterruptedException {
        List<String> global = List.of("runsc", "--root", stateRoot.toString(), "--platform=ptrace", "--network=none",
                "--oci-seccomp");
        return run(global, bundle, id);
    }

    private static Result run(List<String> global, Bundle bundle, String id)
            throws IOException, InterruptedException {
        List<String> argv = new ArrayList<>(global);
        argv.add("run");
        argv.addAll(List.of("--bundle", bundle.dir().toString(), id));
        Path out = Files.createTempFile("kiln-oci-", ".out");
        Path err = Files.createTempFile("kiln-oci-", ".err");
        try {
            Process process = new ProcessBuilder(argv)
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(out.toFile())
                    .redirectError(err.toFile())
                    .start();
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly().waitFor();
                throw new AssertionError("timed out after " + TIMEOUT_SECONDS + " s: " + String.join(" ", argv)
                        + "\nstderr: " + Files.readString(err));
            }
            return new Result(process.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            List<String> delete = new ArrayList<>(global);
            delete.addAll(List.of("delete", "--force", id));
            Process cleanup = new ProcessBuilder(delete).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            cleanup.waitFor(30, TimeUnit.SECONDS);
            // the runtime leaves kiln/<x> (its cgroup's parent) in every hierarchy; x is the id the bundle was
            // written for, which some tests do not reuse as the container's
            SandboxCgroup.remove(id);
            String cgroupsPath = new ObjectMapper().readTree(bundle.configJson().toFile()).at("/linux/cgroupsPath")
                    .asText();
            if (cgroupsPath.startsWith("kiln/") && cgroupsPath.endsWith("/runtime")) {
                SandboxCgroup.remove(cgroupsPath.substring("kiln/".length(), cgroupsPath.length() - "/runtime".length()));
            }
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }
}
