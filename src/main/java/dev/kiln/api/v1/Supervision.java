package dev.kiln.api.v1;

import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;

/**
 * {@code kiln create/run --restart} and the {@code --health-*} flags, as the CLI sends them: {@code restart} as typed
 * ({@code on-failure:3}); {@code healthTest} Docker's form ({@code ["CMD-SHELL", cmd]}, {@code ["NONE"]} for
 * {@code --no-healthcheck}; null: the image's); durations in nanoseconds (0: the image's or Docker's default).
 */
@JsonInclude(JsonInclude.Include.NON_DEFAULT)
public record Supervision(String restart, List<String> healthTest, long healthInterval, long healthTimeout,
                          long healthStartPeriod, int healthRetries) {
}
