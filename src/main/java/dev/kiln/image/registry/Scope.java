package dev.kiln.image.registry;

/** What a request needs to be allowed: pull, or pull and push, on one repository. Tokens are cached per scope. */
record Scope(String repository, boolean push) {

    static Scope pull(String repository) {
        return new Scope(repository, false);
    }

    static Scope push(String repository) {
        return new Scope(repository, true);
    }

    /** The token-service spelling: {@code repository:library/busybox:pull,push}. */
    String value() {
        return "repository:" + repository + ":" + (push ? "pull,push" : "pull");
    }

    /** True when a token for this scope already grants {@code other} (e.g. a registry challenge's scope). */
    boolean covers(String other) {
        String prefix = "repository:" + repository + ":";
        if (!other.startsWith(prefix)) {
            return false;
        }
        for (String action : other.substring(prefix.length()).split(",")) {
            if (!action.equals("pull") && !(push && action.equals("push"))) {
                return false;
            }
        }
        return true;
    }
}
