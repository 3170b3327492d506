package dev.kiln.cli;

import dev.kiln.api.v1.NetworkConnectRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.ArrayList;
import java.util.List;

/** {@code kiln network connect/disconnect}: a container or gVisor sandbox on more than one network. */
final class NetworkConnectCommands {
    private NetworkConnectCommands() {
    }

    @Command(name = "connect", description = "Put a sandbox on one more network (at once if it runs, and at each "
            + "start)")
    static final class Connect extends Subcommand {
        @Option(names = "--alias", paramLabel = "NAME", description = "Another name of the sandbox on this network")
        List<String> aliases = new ArrayList<>();

        @Option(names = "--ip", paramLabel = "ADDRESS", description = "The sandbox's IPv4 address on this network")
        String ip;

        @Parameters(index = "0", paramLabel = "NETWORK")
        String network;

        @Parameters(index = "1", paramLabel = "SANDBOX")
        String sandbox;

        @Override
        int run(DaemonClient daemon) throws Exception {
            try (DaemonClient.Response r = daemon.call("POST", "/v1/networks/" + network + "/connect",
                    new NetworkConnectRequest(sandbox, aliases.isEmpty() ? null : aliases, ip)).ok()) {
                return 0;
            }
        }
    }

    @Command(name = "disconnect", description = "Take a sandbox off a network it joined with connect")
    static final class Disconnect extends Subcommand {
        @Option(names = {"-f", "--force"}, description = "Accepted for Docker's sake (kiln needs no force)")
        boolean force;

        @Parameters(index = "0", paramLabel = "NETWORK")
        String network;

        @Parameters(index = "1", paramLabel = "SANDBOX")
        String sandbox;

        @Override
        int run(DaemonClient daemon) throws Exception {
            try (DaemonClient.Response r = daemon.call("POST", "/v1/networks/" + network + "/disconnect",
                    new NetworkConnectRequest(sandbox, null, null)).ok()) {
                return 0;
            }
        }
    }
}
