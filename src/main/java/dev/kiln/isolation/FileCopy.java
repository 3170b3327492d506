package dev.kiln.isolation;

/**
 * When files can be copied in and out of an isolation's sandboxes from the host ({@code docker cp}), and why not
 * otherwise: the engine refuses with these words before it asks the isolator for the root tree.
 *
 * @param why what stands in the way, as the end of a sentence; empty when copies always work
 */
public record FileCopy(When when, String why) {

    public enum When {
        /** The sandbox's root tree is on the host, running or not. */
        ALWAYS,
        /** Only while the sandbox does not run. */
        WHEN_STOPPED,
        /** The root tree is not on the host. */
        NEVER
    }

    public static FileCopy always() {
        return new FileCopy(When.ALWAYS, "");
    }

    public static FileCopy whenStopped(String why) {
        return new FileCopy(When.WHEN_STOPPED, why);
    }

    public static FileCopy never(String why) {
        return new FileCopy(When.NEVER, why);
    }
}
