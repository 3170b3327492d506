package dev.kiln.isolation.shim;

import dev.kiln.isolation.AttachConnection;
import dev.kiln.isolation.ExitStatus;
import dev.kiln.isolation.SandboxTask;

import java.io.IOException;
import java.time.Duration;
import java.util.Optional;

/**
 * The part of a sandbox's task that its kiln-shim answers, whatever runs under it (a runtime, a VMM's relay): the
 * main process's streams, its exit, and the shim's pid as the run's mark. Isolators add what their runtime does.
 */
public abstract class ShimTask implements SandboxTask {

    protected final Shim shim;

    protected ShimTask(Shim shim) {
        this.shim = shim;
    }

    @Override
    public long pid() {
        return shim.pid();
    }

    @Override
    public AttachConnection attach() throws IOException {
        return shim.attach();
    }

    @Override
    public Optional<ExitStatus> exitStatus() {
        return shim.exitStatus();
    }

    @Override
    public Optional<ExitStatus> await(Duration timeout) {
        return shim.await(timeout);
    }

    @Override
    public boolean alive() {
        return shim.alive();
    }

    @Override
    public void killMonitor() {
        shim.kill();
    }
}
