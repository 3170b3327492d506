package dev.kiln.cli;

import picocli.CommandLine;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * kiln's commands by name. Only the command being run is built: picocli builds a command by reflection, and building
 * all of them cost more than half of the CLI's start (bench/run-latency). Help and unknown names get the full tree.
 */
final class Commands {
    private Commands() {
    }

    private static final Map<String, Supplier<Object>> TOP = new LinkedHashMap<>();
    /** Docker's management-command spellings: {@code kiln image ls|rm|pull|…} run the top-level commands. */
    private static final Map<String, Supplier<Object>> IMAGE = new LinkedHashMap<>();
    private static final Map<String, Supplier<Object>> NETWORK = new LinkedHashMap<>();
    private static final Map<String, Supplier<Object>> VOLUME = new LinkedHashMap<>();

    static {
        TOP.put("run", RunCommand::new);
        TOP.put("create", CreateCommand::new);
        TOP.put("start", StartCommand::new);
        TOP.put("stop", LifecycleCommands.Stop::new);
        TOP.put("kill", LifecycleCommands.Kill::new);
        TOP.put("restart", LifecycleCommands.Restart::new);
        TOP.put("rm", LifecycleCommands.Remove::new);
        TOP.put("ps", PsCommand::new);
        TOP.put("logs", LogsCommand::new);
        TOP.put("inspect", InspectCommand::new);
        TOP.put("wait", LifecycleCommands.Wait::new);
        TOP.put("exec", ExecCommand::new);
        TOP.put("top", TopCommand::new);
        TOP.put("port", PortCommand::new);
        TOP.put("cp", CpCommand::new);
        TOP.put("stats", StatsCommand::new);
        TOP.put("rename", LifecycleCommands.Rename::new);
        TOP.put("pause", PauseCommands.Pause::new);
        TOP.put("unpause", PauseCommands.Unpause::new);
        TOP.put("update", UpdateCommand::new);
        TOP.put("export", ExportCommand::new);
        TOP.put("prune", LifecycleCommands.Prune::new);
        TOP.put("pull", PullCommand::new);
        TOP.put("push", PushCommand::new);
        TOP.put("images", ImagesCommand::new);
        TOP.put("image", ImageCommand::new);
        TOP.put("rmi", RmiCommand::new);
        TOP.put("tag", TagCommand::new);
        TOP.put("load", LoadCommand::new);
        TOP.put("save", SaveCommand::new);
        TOP.put("import", ImportCommand::new);
        TOP.put("build", BuildCommand::new);
        TOP.put("commit", CommitCommand::new);
        TOP.put("network", NetworkCommands.Network::new);
        TOP.put("volume", VolumeCommands.Volume::new);
        TOP.put("kernels", KernelsCommand::new);
        TOP.put("audit", AuditCommand::new);
        TOP.put("daemon", DaemonCommand::new);
        TOP.put("checkpoint", CheckpointCommands.Checkpoint::new);
        IMAGE.put("inspect", ImageInspectCommand::new);
        IMAGE.put("mount", ImageMountCommand::new);
        IMAGE.put("unmount", ImageUnmountCommand::new);
        IMAGE.put("ls", ImagesCommand::new);
        IMAGE.put("rm", RmiCommand::new);
        IMAGE.put("pull", PullCommand::new);
        IMAGE.put("push", PushCommand::new);
        IMAGE.put("tag", TagCommand::new);
        IMAGE.put("load", LoadCommand::new);
        IMAGE.put("save", SaveCommand::new);
        IMAGE.put("import", ImportCommand::new);
        NETWORK.put("create", NetworkCommands.Create::new);
        NETWORK.put("ls", NetworkCommands.Ls::new);
        NETWORK.put("inspect", NetworkCommands.Inspect::new);
        NETWORK.put("rm", NetworkCommands.Rm::new);
        NETWORK.put("prune", NetworkCommands.Prune::new);
        VOLUME.put("create", VolumeCommands.Create::new);
        VOLUME.put("ls", VolumeCommands.Ls::new);
        VOLUME.put("inspect", VolumeCommands.Inspect::new);
        VOLUME.put("rm", VolumeCommands.Rm::new);
        VOLUME.put("prune", VolumeCommands.Prune::new);
        NETWORK.put("connect", NetworkConnectCommands.Connect::new);
        NETWORK.put("disconnect", NetworkConnectCommands.Disconnect::new);
    }

    /** Global options that take a value, so the command name is found after them. */
    private static final Set<String> GLOBAL_WITH_VALUE = Set.of("--root", "--run-root", "-H", "--host",
            "--insecure-registry");
    /** Commands whose options end at the first positional (the image or sandbox), as Docker's. */
    private static final Set<String> STOP_AT_POSITIONAL = Set.of("run", "create", "exec", "audit");

    static void register(CommandLine cli, String[] args) {
        String name = commandName(args);
        boolean versionOnly = name == null && (List.of(args).contains("--version") || List.of(args).contains("-V"));
        List<String> names = versionOnly ? List.of()
                : name != null && TOP.containsKey(name) ? List.of(name) : List.copyOf(TOP.keySet());
        for (String n : names) {
            CommandLine sub = new CommandLine(TOP.get(n).get());
            if (n.equals("image")) {
                IMAGE.forEach((child, make) -> sub.addSubcommand(child, make.get()));
            } else if (n.equals("network")) {
                NETWORK.forEach((child, make) -> sub.addSubcommand(child, make.get()));
            } else if (n.equals("volume")) {
                VOLUME.forEach((child, make) -> sub.addSubcommand(child, make.get()));
            }
            sub.setStopAtPositional(STOP_AT_POSITIONAL.contains(n));
            cli.addSubcommand(n, sub);
        }
    }

    /** A new instance of the top-level command {@code name}, or null ({@link HotCommands}). */
    static Object command(String name) {
        Supplier<Object> make = TOP.get(name);
        return make == null ? null : make.get();
    }

    /** A new instance of {@code kiln image name}, or null ({@link HotCommands}). */
    static Object imageCommand(String name) {
        Supplier<Object> make = IMAGE.get(name);
        return make == null ? null : make.get();
    }

    static boolean stopsAtPositional(String name) {
        return STOP_AT_POSITIONAL.contains(name);
    }

    private static String commandName(String[] args) {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (GLOBAL_WITH_VALUE.contains(a)) {
                i++;
            } else if (!a.startsWith("-")) {
                return a;
            }
        }
        return null;
    }
}
