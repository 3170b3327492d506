package dev.kiln.cli;

import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.ImageRef;
import dev.kiln.image.PullProgress;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Renders pull/push progress as Docker does: on a terminal one live line per layer, redrawn in place; otherwise one
 * plain line per event; with -q nothing.
 */
abstract class ProgressView implements PullProgress {

    static ProgressView forOutput(PrintWriter out, boolean quiet, String doneWord) {
        if (quiet) {
            return new ProgressView() {
            };
        }
        boolean tty = System.console() != null && System.console().isTerminal();
        return tty ? new Live(out, doneWord) : new Lines(out, doneWord);
    }

    void finish() {
    }

    static String id(Descriptor d) {
        return d.contentDigest().shortId();
    }

    /** Plain lines for logs and pipes. */
    private static final class Lines extends ProgressView {
        private final PrintWriter out;
        private final String doneWord;

        Lines(PrintWriter out, String doneWord) {
            this.out = out;
            this.doneWord = doneWord;
        }

        @Override
        public synchronized void resolved(ImageRef ref, Digest manifest, int layers) {
            out.println((ref.tag() != null ? ref.tag() : ref.digest().shortId()) + ": " + ref.familiar());
        }

        @Override
        public synchronized void layerStarted(Descriptor layer) {
            out.println(id(layer) + ": Downloading " + Humane.size(layer.size()));
        }

        @Override
        public synchronized void layerDone(Descriptor layer, boolean alreadyPresent) {
            out.println(id(layer) + ": " + (alreadyPresent ? "Already exists" : doneWord));
        }
    }

    /** Live lines redrawn with ANSI cursor movement, at most ten times a second. */
    private static final class Live extends ProgressView {
        private final PrintWriter out;
        private final String doneWord;
        private final Map<String, String> lines = new LinkedHashMap<>();
        private int drawn;
        private long lastDraw;

        Live(PrintWriter out, String doneWord) {
            this.out = out;
            this.doneWord = doneWord;
        }

        @Override
        public synchronized void layerStarted(Descriptor layer) {
            lines.put(id(layer), "Downloading");
            draw(true);
        }

        @Override
        public synchronized void layerProgress(Descriptor layer, long bytes) {
            int width = 30;
            int filled = layer.size() > 0 ? (int) Math.min(width, bytes * width / layer.size()) : 0;
            lines.put(id(layer), "Downloading [" + "=".repeat(filled) + ">" + " ".repeat(width - filled) + "] "
                    + Humane.size(bytes) + "/" + Humane.size(layer.size()));
            draw(false);
        }

        @Override
        public synchronized void layerDone(Descriptor layer, boolean alreadyPresent) {
            lines.put(id(layer), alreadyPresent ? "Already exists" : doneWord);
            draw(true);
        }

        @Override
        synchronized void finish() {
            draw(true);
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
    }
}
