package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The audit as a PNG bar chart drawn by gnuplot (as bench/ draws its charts): per row, the syscalls its filters let
 * through (allowed + argument-checked) and, for measured rows, those it used; log scale, since the walls differ by
 * orders of magnitude.
 */
final class AuditChart {
    private AuditChart() {
    }

    /** {@code report.txt} → {@code report.png} in the same directory. */
    static Path beside(Path report) {
        String name = report.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return report.resolveSibling((dot > 0 ? name.substring(0, dot) : name) + ".png");
    }

    static void draw(JsonNode report, Path png) throws IOException {
        Path dir = Files.createTempDirectory("kiln-audit-chart-");
        try {
            StringBuilder data = new StringBuilder();
            for (JsonNode row : report.path("rows")) {
                if (row.hasNonNull("error") || !row.hasNonNull("allowed")) {
                    continue;
                }
                boolean measured = row.path("source").asText().equals("measured");
                int reachable = row.path("allowed").asInt() + row.path("argumentChecked").asInt(0);
                String used = measured && row.hasNonNull("used") && row.get("used").asInt() > 0
                        ? row.get("used").asText() : "NaN";
                data.append('"').append(row.path("isolation").asText()).append(measured ? "" : " *")
                        .append("\" ").append(reachable).append(' ').append(used).append('\n');
            }
            Files.writeString(dir.resolve("audit.dat"), data, StandardCharsets.UTF_8);
            String script = """
                    set terminal pngcairo size 1000,560 font "sans,10"
                    set output '%s'
                    set title "kiln audit: host syscalls per wall (%s, Linux %s)" noenhanced
                    set logscale y
                    set yrange [1:1000]
                    set ylabel "syscalls (log scale)"
                    set style data histograms
                    set style histogram clustered gap 1
                    set style fill solid 0.8 border -1
                    set boxwidth 0.9
                    set key top right
                    set xtics noenhanced rotate by 30 right
                    set bmargin 7
                    set label 1 "* published, not measured" at graph 0.99, graph -0.2 right
                    set grid ytics
                    plot '%s' using 2:xtic(1) title "allowed by its seccomp filters" lc rgb "#c0504d", \\
                         '' using 3 title "used during the run" lc rgb "#4f81bd"
                    """.formatted(png.toAbsolutePath(), report.path("image").asText().replace("'", ""),
                    report.path("kernel").asText(), dir.resolve("audit.dat"));
            Files.writeString(dir.resolve("audit.gp"), script, StandardCharsets.UTF_8);
            Process p;
            try {
                p = new ProcessBuilder("gnuplot", dir.resolve("audit.gp").toString()).redirectErrorStream(true)
                        .redirectOutput(dir.resolve("gnuplot.log").toFile()).start();
            } catch (IOException e) {
                throw new IOException("gnuplot is not installed (apt-get install gnuplot-nox)");
            }
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("gnuplot did not finish within 30 s");
            }
            if (p.exitValue() != 0) {
                throw new IOException("gnuplot failed: " + Files.readString(dir.resolve("gnuplot.log")).strip()
                        .lines().reduce((a, b) -> b).orElse("exit " + p.exitValue()));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while drawing the chart");
        } finally {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }
}
