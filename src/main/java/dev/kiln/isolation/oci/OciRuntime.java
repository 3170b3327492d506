package dev.kiln.isolation.oci;

/** The OCI runtimes kiln drives with the same bundle: {@code runc} for {@code container}, {@code runsc} for {@code gvisor}. */
public enum OciRuntime {
    RUNC("runc"),
    RUNSC("runsc");

    private final String binary;

    OciRuntime(String binary) {
        this.binary = binary;
    }

    /** The executable's name on PATH. */
    public String binary() {
        return binary;
    }
}
