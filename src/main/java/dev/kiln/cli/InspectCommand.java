package dev.kiln.cli;

import picocli.CommandLine.Command;

/** {@code kiln inspect REF...}: for now images only; sandboxes join when they exist. */
@Command(name = "inspect", description = "Show details of images as JSON")
final class InspectCommand extends ImageInspectCommand {
}
