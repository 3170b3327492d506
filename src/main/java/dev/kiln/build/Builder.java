package dev.kiln.build;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.dockerfile.Dockerfile;
import dev.kiln.dockerfile.Instruction;
import dev.kiln.dockerfile.ShellWords;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Images;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageRef;
import dev.kiln.image.Platform;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Builds a Dockerfile the way Docker's classic builder does: stage by stage, one image per instruction, each step's
 * result cached under a key of its parent image, its instruction after expansion and, for COPY/ADD, its sources'
 * content hash. RUN steps run as sandboxes of the build's isolation ({@link RunStep}); COPY, ADD and WORKDIR are
 * written by kilnd into an overlay of the parent ({@link StepTree}, {@link CopySources}); both become layers through
 * the same upper-directory-to-layer code ({@link ImageState#child}).
 */
public final class Builder {
    /** ARGs Docker knows without an ARG line; they reach RUN but never the cache key or history. */
    static final Set<String> PROXY_ARGS = Set.of("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
            "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy");
    private static final String NOP = "/bin/sh -c #(nop) ";

    private final Engine engine;
    private final Images images;
    private final Path buildRoot;

    public Builder(Engine engine) {
        this.engine = engine;
        this.images = engine.images();
        this.buildRoot = engine.buildRoot();
    }

    /** The state of the stage being built. */
    private static final class Stage {
        final String name;
        final int index;
        ImageState state;
        Image image; // null while the stage is still scratch with no step made
        Image treeBase; // the last image of the stage whose tree is unpacked: the next tree is made from it
        final Map<String, String> args = new LinkedHashMap<>();
        boolean cmdSet;

        Stage(String name, int index) {
            this.name = name;
            this.index = index;
        }
    }

    private Dockerfile dockerfile;
    private BuildOptions options;
    private BuildOutput out;
    private Path context;
    private final Map<String, String> metaArgs = new LinkedHashMap<>();
    private final Set<String> usedArgs = new LinkedHashSet<>();
    private final List<Stage> stages = new ArrayList<>();
    private int step;
    private int steps;

    /** Builds {@code dockerfile} (already read) with {@code context} (a directory, ignored files already removed). */
    public synchronized Image build(Dockerfile df, Path context, BuildOptions o, BuildOutput output) {
        this.dockerfile = df;
        this.options = o;
        this.out = output;
        this.context = context;
        df.notes().forEach(n -> text(n + "\n"));
        List<Instruction> all = df.instructions();
        int first = 0;
        while (first < all.size() && all.get(first).keyword().equals("ARG")) {
            first++;
        }
        if (first == all.size()) {
            throw KilnException.invalid("dockerfile parse error: " + df.file() + ": no build stage in the "
                    + "Dockerfile (it needs a FROM)");
        }
        if (!all.get(first).keyword().equals("FROM")) {
            throw error(all.get(first), "no build stage in current context (the first instruction after the ARGs "
                    + "must be FROM)");
        }
        int end = targetEnd(all, first);
        steps = end;
        for (int i = 0; i < first; i++) {
            step(all.get(i), null);
        }
        Stage stage = null;
        for (int i = first; i < end; i++) {
            Instruction in = all.get(i);
            if (in.keyword().equals("FROM")) {
                stage = from(in);
            } else {
                step(in, stage);
            }
        }
        Stage last = stage;
        if (!options.labels().isEmpty()) {
            ObjectNode next = last.state.configCopy();
            ObjectNode labels = object(runtime(next), "Labels");
            options.labels().forEach(labels::put);
            commitConfig(last, next, NOP + " LABEL " + pairs(options.labels()), "--label");
        }
        if (last.image == null) {
            ObjectNode next = last.state.configCopy();
            commitConfig(last, next, NOP + " FROM scratch", "scratch");
        }
        Set<String> unused = new LinkedHashSet<>(options.buildArgs().keySet());
        unused.removeAll(usedArgs);
        unused.removeAll(PROXY_ARGS);
        if (!unused.isEmpty()) {
            text("[Warning] One or more build-args " + unused + " were not consumed\n");
        }
        Image result = last.image;
        out.imageId(result.id().toString());
        text("Successfully built " + result.id().shortId() + "\n");
        for (String tag : options.tags()) {
            ImageRef ref = ImageRef.parse(tag);
            images.store().tag(ref, result.manifestDigest(), null);
            text("Successfully tagged " + ref.familiar() + "\n");
        }
        return result;
    }

    /** The index after the last instruction to run: the end, or the end of the {@code --target} stage. */
    private int targetEnd(List<Instruction> all, int first) {
        if (options.target() == null) {
            return all.size();
        }
        boolean inTarget = false;
        for (int i = first; i < all.size(); i++) {
            Instruction in = all.get(i);
            if (in.keyword().equals("FROM")) {
                if (inTarget) {
                    return i;
                }
                List<String> words = new ShellWords(dockerfile.escape(), k -> null).words(in.rest());
                if (words.size() == 3 && words.get(1).equalsIgnoreCase("AS")
                        && words.get(2).equalsIgnoreCase(options.target())) {
                    inTarget = true;
                }
            }
        }
        if (!inTarget) {
            throw KilnException.invalid("target stage \"" + options.target() + "\" could not be found");
        }
        return all.size();
    }

    // ---- FROM ----

    private Stage from(Instruction in) {
        in.allowFlags("platform");
        ShellWords meta = new ShellWords(dockerfile.escape(), this::metaArg);
        List<String> words = meta.words(in.rest());
        if (words.size() != 1 && !(words.size() == 3 && words.get(1).equalsIgnoreCase("AS"))) {
            throw error(in, "FROM requires either one or three arguments (FROM image [AS name])");
        }
        String name = words.size() == 3 ? words.get(2).toLowerCase(Locale.ROOT) : null;
        if (name != null && !name.matches("[a-z][a-z0-9-_.]*")) {
            throw error(in, "invalid name for build stage: \"" + name + "\", name can't start with a number or "
                    + "contain symbols");
        }
        Stage stage = new Stage(name, stages.size());
        String base = words.getFirst();
        String platformFlag = in.flags().get("platform");
        String platform = platformFlag != null ? meta.word(platformFlag) : options.platform();
        header(in, "FROM");
        long t0 = System.nanoTime();
        Optional<Stage> earlier = stages.stream().filter(s -> s.name != null && s.name.equalsIgnoreCase(base))
                .findFirst();
        if (earlier.isPresent()) {
            stage.state = earlier.get().state;
            stage.image = earlier.get().image;
            stage.treeBase = earlier.get().treeBase;
        } else if (base.equalsIgnoreCase("scratch")) {
            stage.state = ImageState.scratch(platform == null ? Platform.host() : Platform.parse(platform));
        } else {
            Image image = baseImage(base, platform);
            stage.state = ImageState.of(images, image);
            stage.image = image;
            // the base's own tree is what the stage's trees are hard-link copies of: a config-only step (ENV,
            // LABEL...) makes a new image with the base's layers, which must not unpack the whole base again
            stage.treeBase = image;
        }
        stages.add(stage);
        done(stage, t0);
        onBuild(stage);
        return stage;
    }

    private Image baseImage(String ref, String platform) {
        if (!options.pull()) {
            try {
                return images.resolve(ref);
            } catch (KilnException e) {
                if (e.kind() != KilnException.Kind.NOT_FOUND) {
                    throw e;
                }
            }
        }
        text("Pulling " + ref + "\n");
        return images.pull(ref, platform == null ? Platform.host() : Platform.parse(platform),
                dev.kiln.image.PullProgress.NONE);
    }

    /** The triggers of the base image's ONBUILD, run as the stage's first steps; the child's list starts empty. */
    private void onBuild(Stage stage) {
        JsonNode triggers = stage.state.runtime() == null ? null : stage.state.runtime().get("OnBuild");
        if (triggers == null || !triggers.isArray() || triggers.isEmpty()) {
            return;
        }
        List<String> texts = new ArrayList<>();
        triggers.forEach(t -> texts.add(t.asText()));
        ObjectNode next = stage.state.configCopy();
        ((ObjectNode) next.get("config")).remove("OnBuild");
        commitConfig(stage, next, NOP + " ONBUILD triggers ran", "onbuild");
        for (String trigger : texts) {
            text("# Executing 1 build trigger\n");
            Dockerfile d = Dockerfile.parse(dockerfile.file() + " (ONBUILD of the base image)", trigger);
            for (Instruction i : d.instructions()) {
                step(i, stage);
            }
        }
    }

    // ---- the other instructions ----

    private void step(Instruction in, Stage stage) {
        if (stage == null) {
            if (!in.keyword().equals("ARG")) {
                throw error(in, "no build stage in current context");
            }
            metaArg(in);
            return;
        }
        header(in, in.keyword());
        long t0 = System.nanoTime();
        ShellWords words = new ShellWords(dockerfile.escape(), k -> lookup(stage, k));
        try {
            switch (in.keyword()) {
                case "RUN" -> run(in, stage);
                case "COPY", "ADD" -> copy(in, stage, words);
                case "WORKDIR" -> workdir(in, stage, words);
                case "ENV" -> env(in, stage, words);
                case "ARG" -> arg(in, stage, words);
                case "LABEL" -> label(in, stage, words);
                case "USER" -> configOnly(in, stage, "User", words.word(in.rest()));
                case "STOPSIGNAL" -> configOnly(in, stage, "StopSignal", words.word(in.rest()));
                case "CMD" -> {
                    stage.cmdSet = true;
                    setList(in, stage, "Cmd", command(in, stage));
                }
                case "ENTRYPOINT" -> {
                    ObjectNode next = stage.state.configCopy();
                    ObjectNode rt = runtime(next);
                    rt.set("Entrypoint", array(command(in, stage)));
                    if (!stage.cmdSet) {
                        rt.remove("Cmd"); // an ENTRYPOINT resets the base image's CMD, as Docker does
                    }
                    commitConfig(stage, next, NOP + " ENTRYPOINT " + json(command(in, stage)), null);
                }
                case "SHELL" -> setList(in, stage, "Shell", in.json());
                case "EXPOSE" -> expose(in, stage, words);
                case "VOLUME" -> volume(in, stage, words);
                case "HEALTHCHECK" -> healthcheck(in, stage);
                case "ONBUILD" -> onbuildInstruction(in, stage);
                case "MAINTAINER" -> {
                    ObjectNode next = stage.state.configCopy();
                    next.put("author", words.word(in.rest()));
                    commitConfig(stage, next, NOP + " MAINTAINER " + in.rest(), null);
                }
                default -> throw error(in, "unknown instruction");
            }
        } catch (KilnException e) {
            if (e.getMessage().startsWith(in.where()) || e.getMessage().startsWith("dockerfile parse error")) {
                throw e;
            }
            throw new KilnException(e.kind(), in.where() + " " + in.keyword() + ": " + e.getMessage());
        }
        done(stage, t0);
    }

    private void run(Instruction in, Stage stage) {
        if (stage.image == null) {
            throw KilnException.invalid("RUN in a stage FROM scratch has no shell to run (copy a program in first)");
        }
        in.allowFlags("network");
        List<String> cmd;
        if (in.execForm()) {
            cmd = in.json();
        } else {
            String script = in.rest();
            if (!in.heredocs().isEmpty()) {
                Instruction.Heredoc h = in.heredocs().getFirst();
                if (script.strip().matches("<<-?['\"]?" + h.name() + "['\"]?") && in.heredocs().size() == 1) {
                    script = h.body(); // RUN <<EOF alone: the document is the script
                } else {
                    StringBuilder s = new StringBuilder(script);
                    for (Instruction.Heredoc d : in.heredocs()) {
                        s.append('\n').append(d.body()).append(d.name());
                    }
                    script = s.toString();
                }
            }
            cmd = new ArrayList<>(shell(stage));
            cmd.add(script);
        }
        List<String> env = new ArrayList<>();
        List<String> keyArgs = new ArrayList<>();
        Map<String, String> configEnv = envOf(stage.state.runtime());
        stage.args.forEach((k, v) -> {
            if (v != null && !configEnv.containsKey(k)) {
                env.add(k + "=" + v);
                keyArgs.add(k + "=" + v);
            }
        });
        options.buildArgs().forEach((k, v) -> {
            if (PROXY_ARGS.contains(k) && v != null && !stage.args.containsKey(k)) {
                env.add(k + "=" + v);
            }
        });
        String createdBy = (keyArgs.isEmpty() ? "" : "|" + keyArgs.size() + " " + String.join(" ", keyArgs) + " ")
                + String.join(" ", cmd);
        String network = in.flags().get("network");
        BuildOptions o = network == null ? options : new BuildOptions(options.dockerfile(), options.tags(),
                options.buildArgs(), options.target(), options.noCache(), options.pull(), options.labels(),
                options.quiet(), network, options.isolation(), options.platform());
        // the isolation is part of the key: a build asked to run its steps in VMs runs them in VMs, not in the
        // containers of an earlier build
        ImageRef key = cacheKey(stage, createdBy + "\nnetwork=" + o.network() + "\nisolation=" + o.isolation());
        if (cached(stage, key)) {
            return;
        }
        tree(stage);
        ObjectNode next = stage.state.configCopy();
        Image image = RunStep.run(engine, stage.state, stage.image, cmd, env, o, this::text, next, createdBy, key,
                in.where() + " RUN");
        advance(stage, image);
    }

    private void copy(Instruction in, Stage stage, ShellWords words) {
        boolean add = in.keyword().equals("ADD");
        if (add) {
            in.allowFlags("chown", "chmod", "checksum", "keep-git-dir", "link");
        } else {
            in.allowFlags("from", "chown", "chmod", "link", "parents", "exclude");
        }
        List<String> args = in.execForm() ? in.json().stream().map(words::word).toList() : words.words(in.rest());
        if (args.size() < 2) {
            throw KilnException.invalid(in.keyword() + " requires at least two arguments, but only one was provided. "
                    + "Destination could not be determined.");
        }
        String destWord = args.getLast();
        String dest = destWord.startsWith("/") ? destWord : join(workdir(stage), destWord);
        if (destWord.endsWith("/") && !dest.endsWith("/")) {
            dest += "/";
        }
        if ((destWord.equals(".") || destWord.endsWith("/.")) && !dest.endsWith("/")) {
            dest += "/";
        }
        Map<String, byte[]> inline = new LinkedHashMap<>();
        for (Instruction.Heredoc h : in.heredocs()) {
            String body = h.expand() ? expandHeredoc(h.body(), words) : h.body();
            inline.put(h.name(), body.getBytes(StandardCharsets.UTF_8));
        }
        List<String> sources = new ArrayList<>(args.subList(0, args.size() - 1));
        sources.replaceAll(s -> s.replaceFirst("^<<-?['\"]?([a-zA-Z_][a-zA-Z0-9_]*)['\"]?$", "$1"));
        String from = in.flags().get("from");
        Path root = context;
        boolean fromContext = true;
        String fromDesc = "";
        if (from != null) {
            from = words.word(from);
            fromDesc = " from " + from;
            fromContext = false;
            root = sourceTree(from);
        }
        String chown = in.flags().containsKey("chown") ? words.word(in.flags().get("chown")) : null;
        String chmod = in.flags().containsKey("chmod") ? words.word(in.flags().get("chmod")) : null;
        CopySources found = CopySources.find(in.keyword(), root, fromContext, sources, inline, dest, chown, chmod);
        String createdBy = NOP + in.keyword() + " " + found.describe();
        ImageRef key = cacheKey(stage, createdBy + "\nchown=" + chown + "\nchmod=" + chmod + fromDesc
                + "\nsources=" + found.hash());
        if (cached(stage, key)) {
            return;
        }
        try (StepTree tree = StepTree.over(stage.image == null ? null : tree(stage), buildRoot)) {
            found.apply(tree);
            tree.unmount();
            advance(stage, stage.state.child(images, stage.state.configCopy(), tree.upper(), createdBy, null, key));
        }
    }

    /** The tree a {@code --from} reads: an earlier stage's (by name or index) or an image's. */
    private Path sourceTree(String from) {
        for (Stage s : stages) {
            if (from.equalsIgnoreCase(s.name) || from.equals(Integer.toString(s.index))) {
                if (s.image == null) {
                    try {
                        return java.nio.file.Files.createDirectories(buildRoot.resolve("empty"));
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }
                return tree(s);
            }
        }
        return images.rootfs(baseImage(from, null));
    }

    private void workdir(Instruction in, Stage stage, ShellWords words) {
        String dir = words.word(in.rest());
        if (dir.isEmpty()) {
            throw KilnException.invalid("WORKDIR requires exactly one argument");
        }
        String path = dir.startsWith("/") ? dir : join(workdir(stage), dir);
        path = java.nio.file.Path.of(path).normalize().toString();
        ObjectNode next = stage.state.configCopy();
        runtime(next).put("WorkingDir", path);
        String createdBy = NOP + "WORKDIR " + path;
        ImageRef key = cacheKey(stage, createdBy);
        if (cached(stage, key)) {
            return;
        }
        Path lower = stage.image == null ? null : tree(stage);
        if (lower != null && exists(lower, path)) {
            advance(stage, stage.state.child(images, next, null, createdBy, null, key));
            return;
        }
        try (StepTree tree = StepTree.over(lower, buildRoot)) {
            CopySources.find("WORKDIR", tree.root(), false, List.of(), Map.of(), path + "/", null, null);
            mkdirs(tree, path);
            tree.unmount();
            advance(stage, stage.state.child(images, next, tree.upper(), createdBy, null, key));
        }
    }

    private static void mkdirs(StepTree tree, String path) {
        java.nio.file.Path tar = tree.scratch("workdir.tar");
        try (var os = java.nio.file.Files.newOutputStream(tar)) {
            var t = new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(os);
            t.setLongFileMode(org.apache.commons.compress.archivers.tar.TarArchiveOutputStream.LONGFILE_POSIX);
            var e = new org.apache.commons.compress.archivers.tar.TarArchiveEntry(path.replaceAll("^/+", "") + "/");
            e.setMode(040755);
            e.setIds(0, 0);
            e.setModTime(System.currentTimeMillis());
            t.putArchiveEntry(e);
            t.closeArchiveEntry();
            t.finish();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        tree.extract(tar, "");
    }

    private static boolean exists(Path root, String path) {
        try {
            var r = dev.kiln.rootfs.RootPaths.follow(root, dev.kiln.rootfs.RootPaths.resolve(root, path));
            return r.attributes() != null && r.attributes().isDirectory();
        } catch (KilnException e) {
            return false;
        }
    }

    private void env(Instruction in, Stage stage, ShellWords words) {
        Map<String, String> pairs = pairs(in, words, "ENV");
        ObjectNode next = stage.state.configCopy();
        Map<String, String> env = envOf(next.get("config"));
        env.putAll(pairs);
        ArrayNode list = runtime(next).putArray("Env");
        env.forEach((k, v) -> list.add(k + "=" + v));
        commitConfig(stage, next, NOP + " ENV " + pairs(pairs), null);
    }

    private void label(Instruction in, Stage stage, ShellWords words) {
        Map<String, String> pairs = pairs(in, words, "LABEL");
        ObjectNode next = stage.state.configCopy();
        ObjectNode labels = object(runtime(next), "Labels");
        pairs.forEach(labels::put);
        commitConfig(stage, next, NOP + " LABEL " + pairs(pairs), null);
    }

    private void arg(Instruction in, Stage stage, ShellWords words) {
        List<String> parts = new ArrayList<>();
        for (String raw : ShellWords.rawWords(in.rest(), dockerfile.escape())) {
            int eq = raw.indexOf('=');
            String name = eq < 0 ? raw : raw.substring(0, eq);
            String value = eq < 0 ? null : words.word(raw.substring(eq + 1));
            usedArgs.add(name);
            if (options.buildArgs().containsKey(name) && options.buildArgs().get(name) != null) {
                value = options.buildArgs().get(name);
            } else if (value == null && metaArgs.containsKey(name)) {
                value = metaArgs.get(name);
            }
            stage.args.put(name, value);
            parts.add(value == null ? name : name + "=" + value);
        }
        if (parts.isEmpty()) {
            throw KilnException.invalid("ARG requires exactly one argument");
        }
        commitConfig(stage, stage.state.configCopy(), NOP + " ARG " + String.join(" ", parts), null);
    }

    private void metaArg(Instruction in) {
        ShellWords words = new ShellWords(dockerfile.escape(), this::metaArg);
        header(in, "ARG");
        for (String raw : ShellWords.rawWords(in.rest(), dockerfile.escape())) {
            int eq = raw.indexOf('=');
            String name = eq < 0 ? raw : raw.substring(0, eq);
            String value = eq < 0 ? null : words.word(raw.substring(eq + 1));
            usedArgs.add(name);
            if (options.buildArgs().get(name) != null) {
                value = options.buildArgs().get(name);
            }
            metaArgs.put(name, value);
        }
    }

    private String metaArg(String name) {
        return metaArgs.get(name);
    }

    private void expose(Instruction in, Stage stage, ShellWords words) {
        ObjectNode next = stage.state.configCopy();
        ObjectNode ports = object(runtime(next), "ExposedPorts");
        List<String> shown = new ArrayList<>();
        for (String w : words.words(in.rest())) {
            String proto = w.contains("/") ? w.substring(w.indexOf('/') + 1).toLowerCase(Locale.ROOT) : "tcp";
            String range = w.contains("/") ? w.substring(0, w.indexOf('/')) : w;
            if (!range.matches("\\d+(-\\d+)?") || !Set.of("tcp", "udp", "sctp").contains(proto)) {
                throw KilnException.invalid("invalid port \"" + w + "\" (expected PORT[-PORT][/tcp|udp|sctp])");
            }
            String[] ends = range.split("-");
            int lo = Integer.parseInt(ends[0]);
            int hi = ends.length > 1 ? Integer.parseInt(ends[1]) : lo;
            for (int p = lo; p <= hi; p++) {
                ports.putObject(p + "/" + proto);
                shown.add(p + "/" + proto);
            }
        }
        commitConfig(stage, next, NOP + " EXPOSE " + String.join(" ", shown), null);
    }

    private void volume(Instruction in, Stage stage, ShellWords words) {
        List<String> vols = in.execForm() ? in.json().stream().map(words::word).toList() : words.words(in.rest());
        if (vols.isEmpty()) {
            throw KilnException.invalid("VOLUME requires at least one argument");
        }
        ObjectNode next = stage.state.configCopy();
        ObjectNode v = object(runtime(next), "Volumes");
        vols.forEach(p -> v.putObject(p));
        commitConfig(stage, next, NOP + " VOLUME " + json(vols), null);
    }

    private void healthcheck(Instruction in, Stage stage) {
        in.allowFlags("interval", "timeout", "start-period", "start-interval", "retries");
        ObjectNode next = stage.state.configCopy();
        ObjectNode hc = runtime(next).putObject("Healthcheck");
        String rest = in.rest().strip();
        String word = rest.split("\\s+", 2)[0].toUpperCase(Locale.ROOT);
        if (word.equals("NONE")) {
            if (rest.split("\\s+").length > 1 || !in.flags().isEmpty()) {
                throw KilnException.invalid("HEALTHCHECK NONE takes no arguments");
            }
            hc.putArray("Test").add("NONE");
        } else if (word.equals("CMD")) {
            Instruction cmd = Dockerfile.parse(in.file(), "CMD " + rest.substring(3).strip()).instructions()
                    .getFirst();
            ArrayNode test = hc.putArray("Test");
            if (cmd.execForm()) {
                test.add("CMD");
                cmd.json().forEach(test::add);
            } else {
                test.add("CMD-SHELL").add(cmd.rest());
            }
            for (String f : List.of("interval", "timeout", "start-period", "start-interval")) {
                if (in.flags().containsKey(f)) {
                    hc.put(switch (f) {
                        case "interval" -> "Interval";
                        case "timeout" -> "Timeout";
                        case "start-period" -> "StartPeriod";
                        default -> "StartInterval";
                    }, nanos(in.flags().get(f)));
                }
            }
            if (in.flags().containsKey("retries")) {
                hc.put("Retries", Integer.parseInt(in.flags().get("retries")));
            }
        } else {
            throw KilnException.invalid("HEALTHCHECK takes CMD or NONE, not " + word);
        }
        commitConfig(stage, next, NOP + " HEALTHCHECK &" + hc, null);
    }

    private static long nanos(String duration) {
        var m = java.util.regex.Pattern.compile("(\\d+(?:\\.\\d+)?)(ms|s|m|h)").matcher(duration);
        double total = 0;
        int at = 0;
        while (m.find() && m.start() == at) {
            double v = Double.parseDouble(m.group(1));
            total += v * switch (m.group(2)) {
                case "ms" -> 1e6;
                case "s" -> 1e9;
                case "m" -> 60e9;
                default -> 3600e9;
            };
            at = m.end();
        }
        if (at != duration.length() || at == 0) {
            throw KilnException.invalid("invalid duration \"" + duration + "\" (e.g. 30s, 1m30s)");
        }
        return (long) total;
    }

    private void onbuildInstruction(Instruction in, Stage stage) {
        Instruction inner = Dockerfile.parse(in.file(), in.rest()).instructions().getFirst();
        if (Set.of("ONBUILD", "FROM", "MAINTAINER").contains(inner.keyword())) {
            throw KilnException.invalid(inner.keyword() + " isn't allowed as an ONBUILD trigger");
        }
        ObjectNode next = stage.state.configCopy();
        JsonNode old = runtime(next).get("OnBuild");
        ArrayNode list = old != null && old.isArray() ? (ArrayNode) old : runtime(next).putArray("OnBuild");
        String text = in.rest().strip();
        list.add(text);
        commitConfig(stage, next, NOP + " ONBUILD " + text, null);
    }

    private void configOnly(Instruction in, Stage stage, String field, String value) {
        ObjectNode next = stage.state.configCopy();
        runtime(next).put(field, value);
        commitConfig(stage, next, NOP + " " + in.keyword() + " " + value, null);
    }

    private void setList(Instruction in, Stage stage, String field, List<String> value) {
        ObjectNode next = stage.state.configCopy();
        runtime(next).set(field, array(value));
        commitConfig(stage, next, NOP + " " + in.keyword() + " " + json(value), null);
    }

    /** CMD/ENTRYPOINT: the exec form as written, the shell form through the stage's SHELL. */
    private List<String> command(Instruction in, Stage stage) {
        if (in.execForm()) {
            return in.json();
        }
        List<String> cmd = new ArrayList<>(shell(stage));
        cmd.add(in.rest());
        return cmd;
    }

    // ---- images and the cache ----

    /** An instruction that changes only the config: an image with an empty layer, cached like any step. */
    private void commitConfig(Stage stage, ObjectNode next, String createdBy, String extraKey) {
        ImageRef key = cacheKey(stage, createdBy + "\n" + ImageState.JSON.valueToTree(next.get("config"))
                + (extraKey == null ? "" : "\n" + extraKey));
        if (cached(stage, key)) {
            return;
        }
        advance(stage, stage.state.child(images, next, null, createdBy, null, key));
    }

    /** The cache's name for a step: its key, a hash of the parent image and what the step does. */
    private ImageRef cacheKey(Stage stage, String what) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            Digest parent = stage.state.id();
            md.update(((parent == null ? "scratch " + ImageState.JSON.valueToTree(stage.state.configCopy())
                    : parent.toString()) + "\n" + what).getBytes(StandardCharsets.UTF_8));
            return ImageRef.parse(dev.kiln.image.ImageStore.BUILD_CACHE + ":" + HexFormat.of().formatHex(md.digest()));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Uses the cached result of this step when there is one (and the build allows it). */
    private boolean cached(Stage stage, ImageRef key) {
        if (options.noCache()) {
            return false;
        }
        Optional<Image> hit = images.store().byName(key);
        if (hit.isEmpty()) {
            return false;
        }
        text(" ---> Using cache\n");
        advance(stage, hit.get());
        return true;
    }

    /**
     * The stage's current image unpacked, made from the last tree of the stage when there is one (only the new
     * layers applied), so a build unpacks each layer once, not once per step.
     */
    private Path tree(Stage stage) {
        Path t = images.rootfs(stage.image, stage.treeBase);
        stage.treeBase = stage.image;
        return t;
    }

    private void advance(Stage stage, Image image) {
        stage.image = image;
        stage.state = ImageState.of(images, image);
    }

    // ---- output ----

    /** "Step N/M : " and the instruction with its flags, as the classic builder prints it. */
    private void header(Instruction in, String keyword) {
        step++;
        StringBuilder text = new StringBuilder(keyword);
        in.flags().forEach((name, value) -> text.append(" --").append(name).append('=').append(value));
        text.append(' ').append(in.rest());
        text("Step " + step + "/" + steps + " : " + text.toString().replace("\n", " ") + "\n");
    }

    private void done(Stage stage, long t0) {
        String id = stage.image == null ? "scratch" : stage.image.id().shortId();
        text(" ---> " + id + String.format(Locale.ROOT, " [%.2f s]", (System.nanoTime() - t0) / 1e9) + "\n");
    }

    private void text(String s) {
        if (!options.quiet()) {
            out.text(s);
        }
    }

    private static KilnException error(Instruction in, String problem) {
        return KilnException.invalid(in.where() + " " + in.keyword() + ": " + problem);
    }

    // ---- helpers ----

    private String lookup(Stage stage, String name) {
        Map<String, String> env = envOf(stage.state.runtime());
        if (env.containsKey(name)) {
            return env.get(name);
        }
        if (stage.args.containsKey(name)) {
            return stage.args.get(name);
        }
        if (PROXY_ARGS.contains(name)) {
            return options.buildArgs().get(name);
        }
        return null;
    }

    private Map<String, String> pairs(Instruction in, ShellWords words, String keyword) {
        Map<String, String> out = new LinkedHashMap<>();
        List<String> raw = ShellWords.rawWords(in.rest(), dockerfile.escape());
        if (raw.isEmpty()) {
            throw KilnException.invalid(keyword + " requires at least one argument");
        }
        if (!raw.getFirst().contains("=")) {
            // the legacy form: ENV NAME the rest of the line
            String rest = in.rest().strip().substring(raw.getFirst().length()).strip();
            if (rest.isEmpty()) {
                throw KilnException.invalid(keyword + " names " + raw.getFirst() + " but gives no value (use "
                        + raw.getFirst() + "=VALUE)");
            }
            out.put(words.word(raw.getFirst()), words.word(rest));
            return out;
        }
        for (String r : raw) {
            int eq = r.indexOf('=');
            if (eq <= 0) {
                throw KilnException.invalid(keyword + " expects NAME=VALUE pairs, not \"" + r + "\"");
            }
            out.put(words.word(r.substring(0, eq)), words.word(r.substring(eq + 1)));
        }
        return out;
    }

    private static String pairs(Map<String, String> pairs) {
        List<String> parts = new ArrayList<>();
        pairs.forEach((k, v) -> parts.add(k + "=" + v));
        return String.join(" ", parts);
    }

    private static String expandHeredoc(String body, ShellWords words) {
        return words.expandOnly(body);
    }

    private static List<String> shell(Stage stage) {
        JsonNode s = stage.state.runtime() == null ? null : stage.state.runtime().get("Shell");
        if (s != null && s.isArray() && !s.isEmpty()) {
            List<String> out = new ArrayList<>();
            s.forEach(e -> out.add(e.asText()));
            return out;
        }
        return List.of("/bin/sh", "-c");
    }

    private static String workdir(Stage stage) {
        JsonNode w = stage.state.runtime() == null ? null : stage.state.runtime().get("WorkingDir");
        return w == null || w.asText().isEmpty() ? "/" : w.asText();
    }

    private static Map<String, String> envOf(JsonNode runtime) {
        Map<String, String> env = new LinkedHashMap<>();
        JsonNode list = runtime == null ? null : runtime.get("Env");
        if (list != null && list.isArray()) {
            for (JsonNode e : list) {
                String s = e.asText();
                int eq = s.indexOf('=');
                if (eq > 0) {
                    env.put(s.substring(0, eq), s.substring(eq + 1));
                }
            }
        }
        return env;
    }

    private static ObjectNode runtime(ObjectNode config) {
        JsonNode rt = config.get("config");
        return rt != null && rt.isObject() ? (ObjectNode) rt : config.putObject("config");
    }

    private static ObjectNode object(ObjectNode parent, String field) {
        JsonNode n = parent.get(field);
        return n != null && n.isObject() ? (ObjectNode) n : parent.putObject(field);
    }

    private static ArrayNode array(List<String> values) {
        ArrayNode a = ImageState.JSON.createArrayNode();
        values.forEach(a::add);
        return a;
    }

    private static String json(List<String> values) {
        return array(values).toString();
    }

    private static String join(String dir, String rel) {
        return (dir.endsWith("/") ? dir : dir + "/") + rel;
    }
}
