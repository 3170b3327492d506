package dev.kiln.isolation;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Reads the Docker json-file log a shim writes: one {@code {"log":…,"stream":…,"time":…}} object per line. Lines that
 * do not parse (a record torn by a crash) are skipped.
 */
public final class LogReader {

    /** One record: a line of output (with its {@code \n}), or a partial line of up to 16 KiB. */
    public record LogRecord(String stream, byte[] data, Instant time) {
        public String text() {
            return new String(data, StandardCharsets.UTF_8);
        }
    }

    /** Where records go; may fail with the I/O of its own destination (an HTTP response, say). */
    @FunctionalInterface
    public interface Sink {
        void accept(LogRecord record) throws IOException;
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration POLL = Duration.ofMillis(50);

    private final Path file;

    public LogReader(Path file) {
        this.file = file;
    }

    /** The reader of the default log of the shim in {@code shimDir}. */
    public static LogReader of(Path shimDir) {
        return new LogReader(shimDir.resolve("log.json"));
    }

    /** Every record; none when the log does not exist yet. */
    public List<LogRecord> all() {
        return tail(-1);
    }

    /** The last {@code n} records ({@code n < 0}: all). */
    public List<LogRecord> tail(int n) {
        List<LogRecord> records = new ArrayList<>();
        unchecked(() -> read(n, records::add));
        return records;
    }

    /** The records written at or after {@code time}. */
    public List<LogRecord> since(Instant time) {
        List<LogRecord> records = new ArrayList<>();
        unchecked(() -> read(-1, r -> {
            if (!r.time().isBefore(time)) records.add(r);
        }));
        return records;
    }

    /** Passes the last {@code tail} records ({@code tail < 0}: all) of what is written now to {@code sink}. */
    public void read(int tail, Sink sink) throws IOException {
        follow(tail, sink, () -> true);
    }

    /** As {@link #follow(int, Sink, BooleanSupplier)}, until {@code process} has {@link RunningProcess#ended}. */
    public void follow(int tail, Sink sink, RunningProcess process) throws IOException {
        follow(tail, sink, process::ended);
    }

    /** As {@link #follow(int, Sink, BooleanSupplier)} with every record. */
    public void follow(Consumer<LogRecord> consumer, BooleanSupplier stopWhen) {
        unchecked(() -> follow(-1, consumer::accept, stopWhen));
    }

    /**
     * Passes the last {@code tail} records ({@code tail < 0}: all) to {@code sink}, then every new one as it is
     * written; returns once {@code stopWhen} is true (checked before each read to the end of the file) and the file
     * has been read to its end. With {@code stopWhen} = "exit.json exists" that is every record, because the shim
     * logs all output before it writes exit.json.
     */
    public void follow(int tail, Sink sink, BooleanSupplier stopWhen) throws IOException {
        FileChannel channel = null;
        try {
            ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            ArrayDeque<LogRecord> backlog = tail < 0 ? null : new ArrayDeque<>(); // the last `tail` while catching up
            while (true) {
                boolean last = stopWhen.getAsBoolean();
                if (channel == null && Files.exists(file)) channel = FileChannel.open(file, StandardOpenOption.READ);
                while (channel != null && channel.read(buffer.clear()) > 0) {
                    buffer.flip();
                    while (buffer.hasRemaining()) {
                        byte b = buffer.get();
                        if (b != '\n') {
                            line.write(b);
                            continue;
                        }
                        LogRecord record = parse(line.toString(StandardCharsets.UTF_8));
                        line.reset();
                        if (record == null) continue;
                        if (backlog == null) {
                            sink.accept(record);
                        } else if (tail > 0) {
                            if (backlog.size() == tail) backlog.removeFirst();
                            backlog.addLast(record);
                        }
                    }
                }
                if (backlog != null) { // caught up with what was written: the tail, then everything new
                    for (LogRecord r : backlog) sink.accept(r);
                    backlog = null;
                }
                if (last) return;
                sleep();
            }
        } finally {
            if (channel != null) channel.close();
        }
    }

    /** One json-file line as a record, or null when it is not one. */
    static LogRecord parse(String line) {
        if (line.isBlank()) return null;
        try {
            JsonNode json = JSON.readTree(line);
            JsonNode log = json.get("log");
            JsonNode time = json.get("time");
            if (log == null || time == null) return null;
            return new LogRecord(json.path("stream").asText(), log.asText().getBytes(StandardCharsets.UTF_8),
                    Instant.parse(time.asText()));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static void sleep() throws InterruptedIOException {
        try {
            Thread.sleep(POLL);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while following a log");
        }
    }

    private interface IoAction {
        void run() throws IOException;
    }

    private void unchecked(IoAction action) {
        try {
            action.run();
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot read the log " + file + ": " + e.getMessage(), e);
        }
    }
}
