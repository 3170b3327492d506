package dev.kiln.cli;

import dev.kiln.api.v1.StreamFrame;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.OutputStream;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The terminal side of {@code run}, {@code start -a} and {@code exec}: copies the process's frames to stdout/stderr,
 * streams stdin with -i, puts the terminal in raw mode and forwards its size with -t, and (without -t) forwards
 * Ctrl-C and other signals to the process as Docker's sig-proxy does. Returns the process's exit code.
 */
final class Attach {

    private final DaemonClient daemon;
    private final String processPath;
    private final boolean tty;
    private final boolean stdin;
    private final Main.Stdio stdio;

    /** {@code processPath}: {@code /v1/sandboxes/ID} or {@code /v1/execs/ID}. */
    Attach(DaemonClient daemon, Main.Stdio stdio, String processPath, boolean tty, boolean stdin) {
        this.daemon = daemon;
        this.stdio = stdio;
        this.processPath = processPath;
        this.tty = tty;
        this.stdin = stdin;
    }

    int run(DaemonClient.Response stream, boolean signalsToSandbox) throws IOException {
        Terminal terminal = tty ? Terminal.raw() : Terminal.NONE;
        try {
            if (tty) {
                resize(terminal);
                Signals.onWindowChange(() -> resize(terminal));
            } else if (signalsToSandbox) {
                Signals.proxy(sig -> post(processPath + "/kill?signal=" + sig));
            }
            if (stdin) {
                Thread.ofVirtual().start(this::pumpStdin);
            }
            return copyOutput(stream.body);
        } finally {
            terminal.restore();
            stream.close();
        }
    }

    private int copyOutput(InputStream in) throws IOException {
        OutputStream out = stdio.out();
        OutputStream err = stdio.err();
        while (true) {
            StreamFrame f = StreamFrame.read(in);
            if (f == null) {
                throw new IOException("the stream from kilnd ended before the process's exit code");
            }
            switch (f.type()) {
                case StreamFrame.STDOUT -> {
                    out.write(f.payload());
                    out.flush();
                }
                case StreamFrame.STDERR -> {
                    err.write(f.payload());
                    err.flush();
                }
                case StreamFrame.EXIT -> {
                    return Integer.parseInt(f.text().strip());
                }
                case StreamFrame.ERROR -> throw new dev.kiln.KilnException(dev.kiln.KilnException.Kind.INTERNAL,
                        f.text());
                default -> {
                    // unknown frame types are for newer clients
                }
            }
        }
    }

    private void pumpStdin() {
        try (DaemonClient.Response r = daemon.stream("POST", processPath + "/stdin", "application/octet-stream",
                new NoCloseInput(stdio.in()))) {
            r.bytes();
        } catch (IOException | RuntimeException e) {
            // the process ended or stdin broke; the output stream reports the outcome
        }
    }

    private void resize(Terminal terminal) {
        int[] size = terminal.size();
        if (size != null) {
            post(processPath + "/resize?h=" + size[0] + "&w=" + size[1]);
        }
    }

    private void post(String path) {
        try (DaemonClient.Response r = daemon.call("POST", path)) {
            r.bytes();
        } catch (IOException | RuntimeException ignored) {
            // best effort: a resize or signal racing the process's exit is harmless
        }
    }

    /** System.in must stay open for other readers (and a closed stdin is the end-of-input signal). */
    private static final class NoCloseInput extends InputStream {
        private final InputStream in;

        NoCloseInput(InputStream in) {
            this.in = in;
        }

        @Override
        public int read() throws IOException {
            return in.read();
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            return in.read(b, off, len);
        }
    }

    /** The controlling terminal, switched to raw mode with {@code stty} and restored afterwards. */
    static class Terminal {
        static final Terminal NONE = new Terminal(null);
        private final String saved;

        private Terminal(String saved) {
            this.saved = saved;
        }

        static Terminal raw() {
            if (System.console() == null) {
                return NONE;
            }
            String saved = stty("-g");
            if (saved == null) {
                return NONE;
            }
            stty("raw", "-echo");
            return new Terminal(saved.strip());
        }

        int[] size() {
            String s = stty("size");
            if (s == null || !s.strip().matches("\\d+ \\d+")) {
                return null;
            }
            String[] p = s.strip().split(" ");
            return new int[] {Integer.parseInt(p[0]), Integer.parseInt(p[1])};
        }

        void restore() {
            if (saved != null) {
                stty(saved);
            }
        }

        private static String stty(String... args) {
            try {
                List<String> cmd = new java.util.ArrayList<>(List.of("stty"));
                cmd.addAll(List.of(args));
                Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.INHERIT)
                        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
                String out = new String(p.getInputStream().readAllBytes());
                return p.waitFor(5, TimeUnit.SECONDS) && p.exitValue() == 0 ? out : null;
            } catch (IOException e) {
                return null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
    }

}
