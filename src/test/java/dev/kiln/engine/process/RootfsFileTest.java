package dev.kiln.engine.process;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The walk's look-ups of missing entries, which a command's PATH search makes in most directories at each start. */
class RootfsFileTest {

    @TempDir
    Path work;

    @Test
    void aPathSearchThroughMissingEntriesFindsTheCommandWithoutAnExceptionInside() throws Exception {
        Path rootfs = Files.createDirectories(work.resolve("rootfs"));
        Files.createDirectories(rootfs.resolve("bin"));
        Files.createDirectories(rootfs.resolve("usr/local/bin"));
        Files.writeString(rootfs.resolve("bin/busybox"), "not really");
        Files.createSymbolicLink(rootfs.resolve("bin/true"), Path.of("busybox"));
        Files.writeString(rootfs.resolve("etc"), "a file where a directory would be");
        List<String> search = List.of("/usr/local/sbin/true", "/usr/local/bin/true", "/usr/sbin/true",
                "/etc/passwd", "/bin/true");

        // once per JVM, outside the recording: the JDK links the downcall (its method handles throw and catch
        // NoSuchMethodErrors inside while they find their pre-generated forms)
        RootfsFile.resolve(rootfs, "/usr/bin/true");
        List<Optional<Path>> found;
        Path dump = work.resolve("exceptions.jfr");
        try (Recording recording = new Recording()) {
            recording.enable("jdk.JavaExceptionThrow").withStackTrace();
            recording.start();
            found = search.stream().map(p -> RootfsFile.resolve(rootfs, p)).toList();
            recording.stop();
            recording.dump(dump);
        }
        assertThat(found).containsExactly(Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(),
                Optional.of(rootfs.resolve("bin/busybox")));
        List<String> thrown = RecordingFile.readAllEvents(dump).stream()
                .filter(e -> e.getThread() != null && e.getThread().getJavaThreadId() == Thread.currentThread().threadId())
                .map(RootfsFileTest::describe).toList();
        assertThat(thrown).isEmpty();
    }

    private static String describe(RecordedEvent e) {
        return e.getClass("thrownClass").getName() + " " + e.getString("message");
    }
}
