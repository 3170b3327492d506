package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.InputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * {@code kiln load [-i FILE]}: docker save archives and OCI layouts (tar or directory; stdin without -i). A
 * directory is streamed to kilnd as a tar, so the daemon reads one format.
 */
@Command(name = "load", description = "Load images from a docker save archive or an OCI layout")
final class LoadCommand extends Subcommand {

    @Option(names = {"-i", "--input"}, paramLabel = "FILE", description = "Archive or OCI layout directory (default: stdin)")
    Path input;

    @Option(names = {"-q", "--quiet"}, description = "Print nothing but errors")
    boolean quiet;

    @Override
    int run(DaemonClient daemon) throws Exception {
        String name = input == null ? "stdin" : input.toAbsolutePath().normalize().getFileName().toString();
        if (input != null && !Files.exists(input)) {
            throw KilnException.notFound("archive " + input + " does not exist");
        }
        try (InputStream in = input == null ? stdio().in()
                : Files.isDirectory(input) ? tarOf(input) : Files.newInputStream(input);
             DaemonClient.Response r = daemon.stream("POST", "/v1/images/load?name=" + q(name),
                     "application/x-tar", in).ok()) {
            for (JsonNode loaded : r.json()) {
                if (!quiet) {
                    out().println("Loaded image: " + loaded.asText());
                }
            }
        }
        return 0;
    }

    /** The directory's regular files as a tar stream, written by a virtual thread as kilnd reads. */
    private static InputStream tarOf(Path dir) throws IOException {
        PipedInputStream in = new PipedInputStream(1 << 16);
        PipedOutputStream pipe = new PipedOutputStream(in);
        List<Path> files;
        try (Stream<Path> s = Files.walk(dir)) {
            files = s.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)).sorted().toList();
        }
        Thread.ofVirtual().start(() -> {
            try (TarArchiveOutputStream tar = new TarArchiveOutputStream(pipe)) {
                tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
                tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
                for (Path p : files) {
                    TarArchiveEntry e = new TarArchiveEntry(dir.relativize(p).toString());
                    e.setSize(Files.size(p));
                    tar.putArchiveEntry(e);
                    Files.copy(p, tar);
                    tar.closeArchiveEntry();
                }
            } catch (IOException e) {
                // the daemon sees a truncated tar and reports it
            }
        });
        return in;
    }
}
