package dev.kiln.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The hot commands' own parser ({@link HotCommands}) against picocli's, on the same command lines: every option and
 * parameter field must end up as picocli sets it, and what the fast parser leaves to picocli (help, unknown options,
 * missing or surplus parameters) must come back as null so picocli answers as before.
 */
class HotCommandsTest {

    @Test
    void setsEveryFieldAsPicocliDoes() throws Exception {
        List<String> lines = List.of(
                "ps", "ps -a", "ps -aq", "ps --filter name=x -f status=running --format json --no-trunc",
                "--root /x --run-root /y ps", "ps --root /x -H unix:///tmp/k.sock", "--debug ps -a",
                "--insecure-registry a:5000 --insecure-registry b:5000 ps",
                "run --rm -it -e A=1 -eB=2 --env=C=3 --name n -p 8080:80 -m 512m --cpus 1.5 img sh -c echo",
                "run -d img --rm -x", "run -h host --network none img", "run --entrypoint= img",
                "create --label a=b -l c --env-file /dev/null --read-only --pids-limit 5 img",
                "create --dns 1.1.1.1 --dns-search lan --add-host h:1.2.3.4 --isolation vm --disk-size 1g img true",
                "exec -it sb sh", "exec sb ls -l", "exec -e A=1 -w /tmp -u 1000 -d sb true",
                "stop -t 5 a b", "stop a", "rm -f a", "rm a -f -v", "kill -s TERM x", "kill x y",
                "logs -f --tail 10 sb", "logs -t --since 10m --boot sb", "inspect --type image x y", "inspect a",
                "start -ai sb", "start a b", "wait a",
                "pull -q 127.0.0.1:5000/a:1", "pull --platform linux/amd64 a", "image pull -q a",
                "image mount a:1", "--root /x image unmount a:1");
        for (String line : lines) {
            String[] args = line.split(" ");
            Subcommand fast = HotCommands.parse(args);
            assertThat(fast).as(line).isNotNull();
            Subcommand slow = picocli(args);
            assertThat(fields(fast)).as(line).isEqualTo(fields(slow));
            assertThat(fields(fast.parent)).as(line).isEqualTo(fields(slow.kiln()));
        }
    }

    @Test
    void leavesToPicocliWhatItIsNotSureOf() {
        List<String> lines = List.of("ps --help", "run --help", "--help", "-h", "ps --bogus", "rm", "logs a b",
                "run", "exec sb", "run @args img", "images", "image ls", "ps -x", "stop -t soon a",
                "run --name a --name b img", "network ls", "daemon", "version", "ps -", "",
                "pull", "image", "image inspect a", "image mount", "image rm a");
        for (String line : lines) {
            assertThat(HotCommands.parse(line.isEmpty() ? new String[0] : line.split(" "))).as(line).isNull();
        }
    }

    @Test
    void versionNeedsNoModel() {
        var out = new java.io.StringWriter();
        var err = new java.io.StringWriter();
        int code = Main.run(new String[] {"--version"}, new java.io.PrintWriter(out), new java.io.PrintWriter(err));
        assertThat(code).isZero();
        assertThat(out.toString()).startsWith("kiln version ");
    }

    private static Subcommand picocli(String[] args) {
        CommandLine cli = new CommandLine(new KilnCommand());
        Commands.register(cli, args);
        CommandLine.ParseResult r = cli.parseArgs(args);
        while (r.hasSubcommand()) { // `image mount`: the innermost command
            r = r.subcommand();
        }
        return (Subcommand) r.commandSpec().userObject();
    }

    /** The annotated fields of {@code o}, its superclasses and its mixins, by name. */
    private static Map<String, Object> fields(Object o) throws IllegalAccessException {
        Map<String, Object> out = new LinkedHashMap<>();
        for (Class<?> c = o.getClass(); c != Object.class; c = c.getSuperclass()) {
            for (Field f : c.getDeclaredFields()) {
                f.setAccessible(true);
                Object v = f.get(o);
                if (f.isAnnotationPresent(CommandLine.Mixin.class)) {
                    fields(v).forEach((k, x) -> out.put(f.getName() + "." + k, x));
                } else if (f.isAnnotationPresent(CommandLine.Option.class)
                        || f.isAnnotationPresent(CommandLine.Parameters.class)) {
                    out.put(f.getName(), v instanceof List<?> l ? new ArrayList<>(l) : v);
                }
            }
        }
        return out;
    }
}
