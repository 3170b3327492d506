package dev.kiln.cli;

import dev.kiln.KilnException;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Renders kilnd's pull/push progress (JSON lines) as Docker does: on a terminal one live line per layer, redrawn in
 * place; otherwise one plain line per event; with -q nothing. Returns the final line, or throws its error. Read
 * with the CLI's own {@link Json}, not Jackson: {@code pull} is a hot command (its start, issue 17).
 */
final class ProgressView {

    private final PrintWriter out;
    private final boolean quiet;
    private final boolean tty;
    private final String doneWord;
    private final Map<String, String> lines = new LinkedHashMap<>();
    private int drawn;
    private long lastDraw;

    ProgressView(PrintWriter out, boolean quiet, String doneWord) {
        this.out = out;
        this.quiet = quiet;
        this.tty = System.console() != null && System.console().isTerminal();
        this.doneWord = doneWord;
    }

    Json render(InputStream ndjson) throws IOException {
        BufferedReader r = new BufferedReader(new InputStreamReader(ndjson, StandardCharsets.UTF_8));
        String line;
        Json last = null;
        while ((line = r.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            Json e = Json.parse(line);
            if (e.has("error")) {
                finish();
                throw new KilnException(KilnException.Kind.UNAVAILABLE, e.path("error").asText());
            }
            if (!e.has("status")) {
                last = e;
                continue;
            }
            show(e);
        }
        finish();
        if (last == null) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "kilnd ended the stream without a result");
        }
        return last;
    }

    private void show(Json e) {
        if (quiet) {
            return;
        }
        String status = e.path("status").asText();
        if (status.equals("resolved")) {
            out.println("Resolved " + e.path("ref").asText() + " to " + e.path("manifest").asText());
            out.flush();
            return;
        }
        String id = e.path("id").asText().replaceFirst("^sha256:", "");
        id = id.length() > 12 ? id.substring(0, 12) : id;
        long total = e.path("total").asLong();
        String text = switch (status) {
            case "started" -> "Downloading " + Humane.size(total);
            case "progress" -> bar(e.path("current").asLong(), total);
            case "exists" -> "Already exists";
            default -> doneWord;
        };
        if (!tty) {
            if (!status.equals("progress")) {
                out.println(id + ": " + text);
                out.flush();
            }
            return;
        }
        lines.put(id, text);
        draw(!status.equals("progress"));
    }

    private static String bar(long current, long total) {
        int width = 30;
        int filled = total > 0 ? (int) Math.min(width, current * width / total) : 0;
        return "Downloading [" + "=".repeat(filled) + ">" + " ".repeat(width - filled) + "] " + Humane.size(current)
                + "/" + Humane.size(total);
    }

    private void draw(boolean force) {
        long now = System.nanoTime();
        if (!force && now - lastDraw < 100_000_000L) {
            return;
        }
        lastDraw = now;
        StringBuilder b = new StringBuilder();
        if (drawn > 0) {
            b.append("\u001b[").append(drawn).append('A');
        }
        lines.forEach((id, status) -> b.append("\u001b[2K").append(id).append(": ").append(status).append('\n'));
        drawn = lines.size();
        out.print(b);
        out.flush();
    }

    private void finish() {
        if (tty && !quiet && !lines.isEmpty()) {
            draw(true);
        }
    }
}
