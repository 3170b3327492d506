package dev.kiln.cli;

import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Jackson for the commands that use it, as {@code DaemonClient.JSON} ({@link DaemonClient} implements this). A field
 * of an interface is set up when it is first read, not when a class implementing it is: the hot commands
 * ({@link HotCommands}) use {@link Json} and never pay for Jackson's first {@code ObjectMapper} (issue 17).
 */
interface Jackson {
    ObjectMapper JSON = new ObjectMapper();
}
