package dev.kiln.cli;

import picocli.CommandLine.IVersionProvider;

/** {@code kiln --version}: the build's version, from the jar manifest when packaged. */
final class Version implements IVersionProvider {
    @Override
    public String[] getVersion() {
        String v = Version.class.getPackage().getImplementationVersion();
        return new String[] {"kiln version " + (v == null ? "dev" : v)};
    }
}
