package dev.kiln.api;

import dev.kiln.api.v1.NetworkCreateRequest;
import dev.kiln.engine.Engine;
import dev.kiln.network.KilnNetwork;
import dev.kiln.network.UserNetwork;

import java.util.Map;

/** The native network API under {@code /v1/networks}, in Docker's shapes ({@link NetworkView}). */
public final class NetworkRoutes {

    private final Engine engine;

    public NetworkRoutes(Engine engine) {
        this.engine = engine;
    }

    public void register(Router r) {
        r.add("GET", "/v1/networks", x -> x.json(NetworkView.all(engine, KilnNetwork.NAME)));
        r.add("POST", "/v1/networks", x -> {
            NetworkCreateRequest req = x.body(NetworkCreateRequest.class);
            UserNetwork n = engine.networks().create(req.name(), req.subnet(), req.gateway(), req.labels(),
                    req.internal(), req.ipRange());
            x.json(201, Map.of("id", n.id(), "name", n.name()));
        });
        r.add("POST", "/v1/networks/prune", x -> x.json(Map.of("removed", engine.pruneNetworks())));
        r.add("GET", "/v1/networks/{name}", x -> x.json(NetworkView.find(engine, x.path("name"), KilnNetwork.NAME)));
        r.add("POST", "/v1/networks/{name}/connect", x -> {
            var req = x.body(dev.kiln.api.v1.NetworkConnectRequest.class);
            if (req.sandbox() == null || req.sandbox().isEmpty()) {
                throw dev.kiln.KilnException.invalid("network connect needs a sandbox");
            }
            engine.sandboxes().connect(req.sandbox(), x.path("name"), req.aliases(), req.ip());
            x.noContent();
        });
        r.add("POST", "/v1/networks/{name}/disconnect", x -> {
            engine.sandboxes().disconnect(x.body(dev.kiln.api.v1.NetworkConnectRequest.class).sandbox(),
                    x.path("name"));
            x.noContent();
        });
        r.add("DELETE", "/v1/networks/{name}", x -> {
            engine.removeNetwork(x.path("name"));
            x.noContent();
        });
    }
}
