package dev.kiln.api.docker;

import dev.kiln.KilnException;
import dev.kiln.api.Exchange;
import dev.kiln.api.Router;

import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Registers each Docker route twice: unversioned and under {@code /v1.NN}, checking NN against what kilnd speaks. */
final class Routes {

    static final String API_VERSION = "1.45";
    static final String MIN_API_VERSION = "1.24";
    private static final Pattern VERSION = Pattern.compile("v1\\.(\\d+)");

    private final Router router;

    Routes(Router router) {
        this.router = router;
    }

    void add(String method, String template, Router.Route route) {
        router.add(method, template, route);
        router.add(method, "/{dockerApiVersion}" + template, x -> {
            checkVersion(x);
            route.handle(x);
        });
    }

    /** Only the versioned form, for catch-alls that must not swallow kiln's own paths. */
    void addVersioned(String method, String template, Router.Route route) {
        router.add(method, "/{dockerApiVersion}" + template, x -> {
            checkVersion(x);
            route.handle(x);
        });
    }

    private static void checkVersion(Exchange x) {
        String v = x.path("dockerApiVersion");
        Matcher m = VERSION.matcher(v);
        if (!m.matches()) {
            throw KilnException.notFound("kilnd has no endpoint " + x.request().getMethod() + " "
                    + x.request().getHttpURI().getPath());
        }
        int minor = Integer.parseInt(m.group(1));
        if (minor > minor(API_VERSION)) {
            throw KilnException.invalid("client version 1." + minor + " is too new. Maximum supported API version is "
                    + API_VERSION);
        }
        if (minor < minor(MIN_API_VERSION)) {
            throw KilnException.invalid("client version 1." + minor + " is too old. Minimum supported API version is "
                    + MIN_API_VERSION + ", please upgrade your client to a newer version");
        }
    }

    private static int minor(String version) {
        return Integer.parseInt(version.substring(version.indexOf('.') + 1));
    }

    /** Docker's answer for what kiln does not do: its error shape, 501, naming the feature. */
    static void unsupported(Exchange x, String what) {
        x.discardBody(1 << 20);
        x.json(501, Map.of("message", "kiln does not support " + what + " yet"));
    }
}
