package dev.kiln.cli;

import dev.kiln.cli.OptionModel.Kind;
import dev.kiln.cli.OptionModel.Opt;
import dev.kiln.cli.OptionModel.Param;

import java.io.PrintWriter;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The commands people run most, parsed without picocli: building picocli's model of even one command (reflection,
 * an annotation proxy per annotation type, its converters and help) took most of a {@code kiln ps} (issue 17). The
 * options still come from the commands' picocli annotations ({@link OptionModel}), and the command runs as under
 * picocli. Anything this parser is not sure of (help, an unknown or unusual option, a missing or surplus parameter, an
 * {@code @file} argument) returns null, and {@link Main} hands the whole command line to picocli, which parses it or
 * says what is wrong as before.
 */
final class HotCommands {
    private HotCommands() {
    }

    /**
     * The hot path of issue 17: the life-cycle commands and the listings. bin/kiln names them again to pick their AOT
     * cache before any Java runs; LauncherCacheTest fails when the two lists differ.
     */
    static final Set<String> HOT = Set.of("run", "create", "start", "exec", "ps", "rm", "stop", "kill",
            "logs", "inspect", "wait", "pull");
    /** {@code kiln image pull|mount|unmount}: a pull and the mount of its root, as scripts and bench/pull-unpack do. */
    static final Set<String> HOT_IMAGE = Set.of("pull", "mount", "unmount");

    /** Runs {@code args} if it is a plain hot command and returns its exit code; null: picocli's to parse. */
    static Integer run(String[] args, PrintWriter out, PrintWriter err, Main.Stdio stdio, boolean debug) {
        if (args.length == 1 && (args[0].equals("--version") || args[0].equals("-V"))) {
            out.println(new Version().getVersion()[0]);
            return 0;
        }
        Subcommand command = parse(args);
        if (command == null) {
            return null;
        }
        command.parent.stdio = stdio;
        command.out = out;
        command.err = err;
        try {
            return command.call();
        } catch (Exception e) {
            return Main.failed(e, debug, err);
        }
    }

    /** The hot command {@code args} names, its fields and its {@code parent}'s set; null: picocli's to parse. */
    static Subcommand parse(String[] args) {
        KilnCommand kiln = new KilnCommand();
        OptionModel global = OptionModel.of(kiln);
        if (!global.complete()) {
            return null;
        }
        Map<Opt, Boolean> seen = new IdentityHashMap<>();
        Parser before = new Parser(global.options(), seen);
        int i = 0;
        while (i < args.length && args[i].startsWith("-")) {
            int used = before.option(args, i);
            if (used == 0) {
                return null;
            }
            i += used;
        }
        if (i == args.length) {
            return null;
        }
        Object found;
        if (args[i].equals("image") && i + 1 < args.length && HOT_IMAGE.contains(args[i + 1])) {
            found = Commands.imageCommand(args[++i]);
        } else {
            found = HOT.contains(args[i]) ? Commands.command(args[i]) : null;
        }
        if (!(found instanceof Subcommand command)) {
            return null;
        }
        String name = args[i++];
        OptionModel model = OptionModel.of(command);
        if (!model.complete()) {
            return null;
        }
        List<Opt> options = new ArrayList<>(model.options());
        global.options().stream().filter(Opt::inherited).forEach(options::add);
        Parser after = new Parser(options, seen);
        if (after.clash) {
            return null;
        }
        boolean stopAtPositional = Commands.stopsAtPositional(name);
        boolean optionsEnded = false;
        List<String> positionals = new ArrayList<>();
        for (; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("@") || a.equals("-")) {
                return null; // picocli reads @files; "-" is its call too
            }
            if (optionsEnded) {
                if (a.equals("--") && stopAtPositional) {
                    return null;
                }
                positionals.add(a);
            } else if (a.equals("--")) {
                optionsEnded = true;
            } else if (a.startsWith("-")) {
                int used = after.option(args, i);
                if (used == 0) {
                    return null;
                }
                i += used - 1;
            } else {
                positionals.add(a);
                optionsEnded = stopAtPositional;
            }
        }
        if (!before.defaults() || !after.defaults() || !assign(model.params(), positionals)) {
            return null;
        }
        command.parent = kiln;
        return command;
    }

    /** Puts the positional arguments into the parameters' fields; false when picocli would object. */
    private static boolean assign(List<Param> params, List<String> positionals) {
        boolean[] covered = new boolean[positionals.size()];
        for (Param p : params) {
            int to = p.to() < 0 ? positionals.size() - 1 : Math.min(p.to(), positionals.size() - 1);
            List<String> values = p.from() <= to ? positionals.subList(p.from(), to + 1) : List.of();
            if (values.size() < p.min()) {
                return false;
            }
            for (int k = p.from(); k <= to; k++) {
                covered[k] = true;
            }
            try {
                if (p.to() < 0) {
                    if (!values.isEmpty()) {
                        List<Object> list = new ArrayList<>();
                        for (String v : values) {
                            list.add(p.kind() == Kind.PATHS ? Path.of(v) : v);
                        }
                        OptionModel.set(p.field(), p.owner(), list);
                    }
                } else if (!values.isEmpty()) {
                    Object v = Parser.convert(p.kind(), values.getFirst());
                    if (v == null) {
                        return false;
                    }
                    OptionModel.set(p.field(), p.owner(), v);
                }
            } catch (IllegalAccessException | InvalidPathException e) {
                return false;
            }
        }
        for (boolean c : covered) {
            if (!c) {
                return false; // a surplus argument: picocli says which
            }
        }
        return true;
    }

    /** Options by name, set on their objects as they are met. */
    private static final class Parser {
        private final Map<String, Opt> byName = new HashMap<>();
        /**
         * The options met so far, before and after the command's name (a list is replaced on its first use, as
         * picocli replaces its initial value; a default is for options not met at all).
         */
        private final Map<Opt, Boolean> seen;
        boolean clash;

        Parser(List<Opt> options, Map<Opt, Boolean> seen) {
            this.seen = seen;
            for (Opt o : options) {
                for (String n : o.names()) {
                    clash |= byName.put(n, o) != null;
                }
            }
        }

        /** Applies the option at {@code args[i]}: the number of arguments it took, 0 when picocli must parse. */
        int option(String[] args, int i) {
            String a = args[i];
            Opt o = byName.get(a);
            if (o != null) {
                if (o.kind() == Kind.FLAG) {
                    return set(o, "true") ? 1 : 0;
                }
                return i + 1 < args.length && !byName.containsKey(args[i + 1]) && set(o, args[i + 1]) ? 2 : 0;
            }
            int eq = a.indexOf('=');
            if (eq > 0 && (o = byName.get(a.substring(0, eq))) != null) {
                return o.kind() != Kind.FLAG && set(o, a.substring(eq + 1)) ? 1 : 0;
            }
            if (a.length() > 2 && a.charAt(0) == '-' && a.charAt(1) != '-') { // -it, -aq, -eK=V
                for (int k = 1; k < a.length(); k++) {
                    Opt c = byName.get("-" + a.charAt(k));
                    if (c == null) {
                        return 0;
                    }
                    if (c.kind() == Kind.FLAG) {
                        if (!set(c, "true")) {
                            return 0;
                        }
                        continue;
                    }
                    if (k + 1 < a.length()) {
                        return set(c, a.substring(k + 1)) ? 1 : 0;
                    }
                    return i + 1 < args.length && !byName.containsKey(args[i + 1]) && set(c, args[i + 1]) ? 2 : 0;
                }
                return 1;
            }
            return 0;
        }

        /** The default values of the options not given; false when one cannot be applied here. */
        boolean defaults() {
            for (Opt o : byName.values()) {
                if (o.defaultValue() == null || seen.containsKey(o)) {
                    continue;
                }
                if (o.kind() != Kind.FLAG) {
                    if (!set(o, o.defaultValue())) {
                        return false;
                    }
                } else if (!o.supported()) {
                    return false;
                } else {
                    try {
                        OptionModel.set(o.field(), o.owner(), Boolean.parseBoolean(o.defaultValue()));
                    } catch (IllegalAccessException e) {
                        return false;
                    }
                }
            }
            return true;
        }

        private boolean set(Opt o, String value) {
            if (!o.supported()) {
                return false;
            }
            boolean first = seen.put(o, Boolean.TRUE) == null;
            try {
                switch (o.kind()) {
                    case FLAG -> {
                        // picocli sets a flag to the opposite of its default; a flag that defaults to true is its call
                        if (!first || Boolean.TRUE.equals(OptionModel.get(o.field(), o.owner()))) {
                            return false;
                        }
                        OptionModel.set(o.field(), o.owner(), true);
                    }
                    case STRINGS, PATHS -> {
                        @SuppressWarnings("unchecked")
                        List<Object> list = first ? new ArrayList<>()
                                : (List<Object>) OptionModel.get(o.field(), o.owner());
                        list.add(o.kind() == Kind.PATHS ? Path.of(value) : value);
                        OptionModel.set(o.field(), o.owner(), list);
                    }
                    default -> {
                        Object v = convert(o.kind(), value);
                        if (!first || v == null) {
                            return false; // given twice, or not a number: picocli's message
                        }
                        OptionModel.set(o.field(), o.owner(), v);
                    }
                }
                return true;
            } catch (IllegalAccessException | InvalidPathException e) {
                return false;
            }
        }

        static Object convert(Kind kind, String value) {
            try {
                return switch (kind) {
                    case STRING -> value;
                    case PATH -> Path.of(value);
                    case INT -> Integer.parseInt(value);
                    case LONG -> Long.parseLong(value);
                    default -> null;
                };
            } catch (NumberFormatException | InvalidPathException e) {
                return null;
            }
        }
    }
}
