package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.SandboxSpec;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.stream.Collectors;

/**
 * The payload of START and EXEC frames (docs/guest-protocol.md): NUL-terminated {@code key=value} records.
 * A process: {@code arg} (repeated, in order), {@code env} (repeated), {@code cwd}, {@code uid}, {@code gid},
 * {@code groups} (comma-separated), {@code tty}, {@code stdin}; START adds {@code hostname}, {@code hosts},
 * {@code readonly}.
 */
final class GuestSpec {
    static final int MAX_PAYLOAD = 65536;

    private GuestSpec() {
    }

    static byte[] start(SandboxSpec sandbox) {
        ByteArrayOutputStream out = process(sandbox.process());
        record(out, "hostname", sandbox.hostname());
        record(out, "hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t"
                + sandbox.hostname() + "\n");
        record(out, "readonly", sandbox.readOnly() ? "1" : "0");
        return checked(out);
    }

    static byte[] exec(ProcessSpec process) {
        return checked(process(process));
    }

    private static ByteArrayOutputStream process(ProcessSpec p) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (String arg : p.args()) record(out, "arg", arg);
        for (String env : p.env()) record(out, "env", env);
        record(out, "cwd", p.cwd() == null || p.cwd().isEmpty() ? "/" : p.cwd());
        record(out, "uid", Integer.toString(p.uid()));
        record(out, "gid", Integer.toString(p.gid()));
        record(out, "groups", p.additionalGids().stream().map(String::valueOf).collect(Collectors.joining(",")));
        record(out, "tty", p.tty() ? "1" : "0");
        record(out, "stdin", p.stdin() ? "1" : "0");
        return out;
    }

    private static void record(ByteArrayOutputStream out, String key, String value) {
        if (value.indexOf('\0') >= 0) throw KilnException.invalid(key + " must not contain a NUL byte");
        out.writeBytes((key + "=" + value).getBytes(StandardCharsets.UTF_8));
        out.write(0);
    }

    private static byte[] checked(ByteArrayOutputStream out) {
        if (out.size() > MAX_PAYLOAD) {
            throw KilnException.invalid("the process's arguments and environment take " + out.size()
                    + " bytes; a VM accepts at most " + MAX_PAYLOAD);
        }
        return out.toByteArray();
    }
}
