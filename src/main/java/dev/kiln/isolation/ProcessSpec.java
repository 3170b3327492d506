package dev.kiln.isolation;

import java.util.List;

/**
 * The process a sandbox (or an exec) runs, already resolved: Docker's entrypoint/cmd rules applied, the user turned
 * into numeric ids from the image's /etc/passwd and /etc/group, the image's Env merged with the user's.
 */
public record ProcessSpec(List<String> args, List<String> env, String cwd, int uid, int gid,
                          List<Integer> additionalGids, boolean tty, boolean stdin) {

    public ProcessSpec {
        args = List.copyOf(args);
        env = List.copyOf(env);
        additionalGids = List.copyOf(additionalGids);
        if (args.isEmpty()) {
            throw new IllegalArgumentException("a process needs at least one argument");
        }
    }
}
