package dev.kiln.testing;

/**
 * A fixture image: an OCI layout directory and its tag, and (when pushed) the registry reference
 * {@code 127.0.0.1:PORT/NAME:TAG}; {@code registryRef} is null for layout-only fixtures.
 */
public record Fixture(String ociLayoutDir, String tag, String registryRef) {
    /** {@code oci:DIR:TAG}, the skopeo/containers-image form of the layout reference. */
    public String ociRef() {
        return "oci:" + ociLayoutDir + ":" + tag;
    }

    /** The repository name in the registry ({@code NAME} of {@code HOST/NAME:TAG}); null when not pushed. */
    public String repository() {
        if (registryRef == null) return null;
        return registryRef.substring(registryRef.indexOf('/') + 1, registryRef.lastIndexOf(':'));
    }
}
