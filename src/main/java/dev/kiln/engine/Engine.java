package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.image.Image;
import dev.kiln.isolation.Isolator;
import dev.kiln.state.Database;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** The engine as the daemon sees it: images and sandboxes over one database, and the rules that span both. */
public final class Engine implements AutoCloseable {

    private final Images images;
    private final Sandboxes sandboxes;
    private final Events events = new Events();
    private final Map<String, Isolator> isolators;

    public Engine(Path root, Path runRoot, Set<String> insecureRegistries, Map<String, Isolator> isolators,
                  String defaultIsolation) {
        this.isolators = Map.copyOf(isolators);
        this.images = new Images(root, runRoot, insecureRegistries);
        Database db = images.database();
        this.sandboxes = new Sandboxes(images, new SandboxStore(db), root.resolve("sandboxes"), isolators,
                defaultIsolation, events, new dev.kiln.network.Networks(root));
    }

    public Images images() {
        return images;
    }

    public Sandboxes sandboxes() {
        return sandboxes;
    }

    /** The runtime binary or VMM behind an isolation, as inspect shows it. */
    public String runtimeOf(String isolation) {
        Isolator i = isolators.get(isolation);
        return i == null ? "" : i.runtime();
    }

    public Events events() {
        return events;
    }

    /** Docker's rmi, refusing images a sandbox uses unless forced; forced, the sandbox keeps the unpacked tree. */
    public List<String> removeImage(String ref, boolean force) {
        Image image = images.resolve(ref);
        boolean used = sandboxes.usesImage(image.id());
        // as Docker: removing one of several names only untags; the image (and its sandboxes) stay
        boolean onlyUntags = image.name().equals(dev.kiln.image.ImageRef.parse(ref).toString())
                && images.store().namesOf(image.id()).size() > 1;
        if (used && !force && !onlyUntags) {
            throw KilnException.conflict("image " + ref + " is in use by a sandbox (remove the sandbox first or use -f)");
        }
        return images.remove(ref, force, used);
    }

    @Override
    public void close() {
        sandboxes.close();
        images.close();
    }
}
