package dev.kiln.architecture;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Keeps DESIGN.md §6's one-way dependencies: cli → (HTTP) → api → engine → {isolation, rootfs, image, state}.
 * The CLI never imports the engine; runtimes never read image content; the wire records of {@code api.v1} are the
 * only part of api that the engine and the CLI share.
 */
class DependencyRulesTest {

    private static final Path MAIN = Path.of("src/main/java/dev/kiln");
    private static final Pattern IMPORT = Pattern.compile("^import (?:static )?dev\\.kiln\\.([a-z0-9.]+?)\\.[A-Z]",
            Pattern.MULTILINE);

    /**
     * Package (and its subpackages) → kiln packages it must not import. The CLI may use {@code rootfs}, a library
     * below the engine: {@code kiln cp} writes and unpacks tar streams on the client's side with the same guarded
     * code kilnd uses.
     */
    private static final Map<String, List<String>> FORBIDDEN = Map.of(
            "cli", List.of("engine", "isolation", "image", "state"),
            "api", List.of("cli"),
            "engine", List.of("api.docker", "cli"),
            "isolation", List.of("engine", "api", "cli", "image", "state"),
            "rootfs", List.of("engine", "api", "cli", "isolation", "state"),
            "image", List.of("engine", "api", "cli", "isolation", "rootfs"),
            "state", List.of("engine", "api", "cli", "isolation", "rootfs", "image"),
            "tls", List.of("engine", "api", "cli", "isolation", "rootfs", "image", "state"),
            "network", List.of("engine", "api", "cli", "isolation", "rootfs", "image", "state"));

    @Test
    void packagesDependOneWay() throws IOException {
        List<String> violations = new ArrayList<>();
        try (Stream<Path> files = Files.walk(MAIN)) {
            for (Path file : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String pkg = MAIN.relativize(file.getParent()).toString().replace('/', '.');
                String top = pkg.contains(".") ? pkg.substring(0, pkg.indexOf('.')) : pkg;
                Matcher m = IMPORT.matcher(Files.readString(file));
                while (m.find()) {
                    String imported = m.group(1);
                    for (String banned : FORBIDDEN.getOrDefault(top, List.of())) {
                        if (imported.equals(banned) || imported.startsWith(banned + ".")) {
                            violations.add(MAIN.relativize(file) + " imports dev.kiln." + imported);
                        }
                    }
                }
            }
        }
        assertThat(violations).isEmpty();
    }

    @Test
    void theEngineUsesOnlyTheWireRecordsOfTheApi() throws IOException {
        List<String> violations = new ArrayList<>();
        try (Stream<Path> files = Files.walk(MAIN.resolve("engine"))) {
            for (Path file : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                Matcher m = IMPORT.matcher(Files.readString(file));
                while (m.find()) {
                    if (m.group(1).startsWith("api") && !m.group(1).equals("api.v1")) {
                        violations.add(file + " imports dev.kiln." + m.group(1));
                    }
                }
            }
        }
        assertThat(violations).isEmpty();
    }
}
