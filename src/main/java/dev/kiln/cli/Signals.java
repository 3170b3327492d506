package dev.kiln.cli;

import sun.misc.Signal;

import java.util.List;
import java.util.function.Consumer;

/** The CLI's own signal handling: forwarding to the sandbox (sig-proxy) and terminal size changes. */
final class Signals {
    private Signals() {
    }

    /** Signals a user sends to {@code kiln run} that Docker passes on to the sandbox. */
    private static final List<String> PROXIED = List.of("INT", "TERM", "HUP", "QUIT", "USR1", "USR2");

    static void proxy(Consumer<String> forward) {
        for (String name : PROXIED) {
            try {
                Signal.handle(new Signal(name), s -> forward.accept(name));
            } catch (IllegalArgumentException e) {
                // the JVM reserves this signal here; it keeps its default meaning
            }
        }
    }

    static void onWindowChange(Runnable r) {
        try {
            Signal.handle(new Signal("WINCH"), s -> r.run());
        } catch (IllegalArgumentException e) {
            // no SIGWINCH: the size is set once at start
        }
    }
}
