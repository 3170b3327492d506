package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.dockerfile.DockerIgnore;
import dev.kiln.rootfs.TreeArchive;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code kiln build [OPTIONS] DIR}: sends DIR (what its .dockerignore leaves, the Dockerfile and .dockerignore
 * always) to kilnd's {@code POST /build}, Docker's endpoint, and prints the build's progress as it comes.
 */
@Command(name = "build", description = "Build an image from a Dockerfile, its RUN steps in sandboxes of the chosen "
        + "isolation")
final class BuildCommand extends Subcommand {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Parameters(paramLabel = "DIR", description = "The build context")
    Path dir;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "The Dockerfile (default: DIR/Dockerfile)")
    Path file;

    @Option(names = {"-t", "--tag"}, paramLabel = "NAME", description = "Name the image (repeatable)")
    List<String> tags = new ArrayList<>();

    @Option(names = "--build-arg", paramLabel = "K=V", description = "A build argument (K alone: from this "
            + "environment)")
    List<String> buildArgs = new ArrayList<>();

    @Option(names = "--label", paramLabel = "K=V", description = "A label on the image")
    List<String> labels = new ArrayList<>();

    @Option(names = "--target", paramLabel = "STAGE", description = "The last stage to build")
    String target;

    @Option(names = "--no-cache", description = "Do not use the build cache")
    boolean noCache;

    @Option(names = "--pull", description = "Pull the FROM images even when present")
    boolean pull;

    @Option(names = {"-q", "--quiet"}, description = "Print only the image ID")
    boolean quiet;

    @Option(names = "--iidfile", paramLabel = "FILE", description = "Write the image ID to FILE")
    Path iidfile;

    @Option(names = "--isolation", paramLabel = "ISOLATION", description = "Where RUN steps run: container, gvisor "
            + "or vm (default: kilnd's)")
    String isolation;

    @Option(names = "--network", paramLabel = "MODE", description = "RUN's network: default, none or host")
    String network;

    @Option(names = "--platform", paramLabel = "OS/ARCH", description = "The platform of the FROM images")
    String platform;

    @Override
    int run(DaemonClient daemon) throws Exception {
        Path context = dir.toAbsolutePath().normalize();
        if (!Files.isDirectory(context)) {
            throw KilnException.notFound("build context " + dir + " is not a directory");
        }
        Path dockerfile = file == null ? context.resolve("Dockerfile") : file.toAbsolutePath().normalize();
        if (!dockerfile.startsWith(context)) {
            throw KilnException.invalid("the Dockerfile " + file + " must be inside the build context " + dir);
        }
        if (!Files.isRegularFile(dockerfile)) {
            throw KilnException.notFound("Cannot locate specified Dockerfile: " + context.relativize(dockerfile));
        }
        String dockerfileName = context.relativize(dockerfile).toString();
        StringBuilder path = new StringBuilder("/build?dockerfile=").append(q(dockerfileName));
        tags.forEach(t -> path.append("&t=").append(q(t)));
        path.append("&buildargs=").append(q(JSON.writeValueAsString(pairs(buildArgs, true))));
        path.append("&labels=").append(q(JSON.writeValueAsString(pairs(labels, false))));
        if (target != null) {
            path.append("&target=").append(q(target));
        }
        if (noCache) {
            path.append("&nocache=1");
        }
        if (pull) {
            path.append("&pull=1");
        }
        if (quiet) {
            path.append("&q=1");
        }
        if (isolation != null) {
            path.append("&isolation=").append(q(isolation));
        }
        if (network != null) {
            path.append("&networkmode=").append(q(network));
        }
        if (platform != null) {
            path.append("&platform=").append(q(platform));
        }
        String id = null;
        try (InputStream tar = contextTar(context, dockerfileName);
             DaemonClient.Response r = daemon.stream("POST", path.toString(), "application/x-tar", tar).ok()) {
            BufferedReader lines = new BufferedReader(new InputStreamReader(r.body, StandardCharsets.UTF_8));
            for (String line; (line = lines.readLine()) != null; ) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode m = JSON.readTree(line);
                if (m.has("errorDetail") || m.has("error")) {
                    throw KilnException.command(1, m.path("errorDetail").path("message").asText(m.path("error")
                            .asText()));
                }
                if (m.has("aux") && m.get("aux").has("ID")) {
                    id = m.get("aux").get("ID").asText();
                }
                if (m.has("stream") && !quiet) {
                    out().print(m.get("stream").asText());
                    out().flush();
                }
            }
        }
        if (id == null) {
            throw KilnException.command(1, "the build ended without an image (kilnd closed the stream)");
        }
        if (quiet) {
            out().println(id);
        }
        if (iidfile != null) {
            Files.writeString(iidfile, id);
        }
        return 0;
    }

    private static Map<String, String> pairs(List<String> values, boolean fromEnvironment) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String v : values) {
            int eq = v.indexOf('=');
            if (eq < 0) {
                if (fromEnvironment) {
                    m.put(v, System.getenv(v)); // null: the variable is not set here, and the arg stays unset
                } else {
                    m.put(v, "");
                }
            } else {
                m.put(v.substring(0, eq), v.substring(eq + 1));
            }
        }
        return m;
    }

    /**
     * The context as a tar stream, written by a virtual thread as kilnd reads: what .dockerignore leaves out is not
     * sent (the Dockerfile and .dockerignore always are: kilnd needs them, and deletes them again when ignored).
     */
    private static InputStream contextTar(Path context, String dockerfileName) throws IOException {
        Path ignoreFile = context.resolve(".dockerignore");
        DockerIgnore ignore = Files.isRegularFile(ignoreFile)
                ? DockerIgnore.parse(Files.readString(ignoreFile)) : DockerIgnore.none();
        PipedInputStream in = new PipedInputStream(1 << 16);
        PipedOutputStream pipe = new PipedOutputStream(in);
        Thread.ofVirtual().start(() -> {
            try (pipe) {
                TreeArchive.tar(context, ".", pipe, e -> {
                    String name = e.getName().replaceFirst("^\\./?", "").replaceAll("/$", "");
                    return name.isEmpty() || name.equals(dockerfileName) || name.equals(".dockerignore")
                            || !ignore.excluded(name);
                });
            } catch (IOException e) {
                // kilnd sees a truncated tar and says so
            }
        });
        return in;
    }
}
