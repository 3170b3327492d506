package dev.kiln;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class KilnExceptionTest {

    @Test
    void quotedValuesStayOnOneLine() {
        assertThat(KilnException.quote("a\nb\u0000\"c\\")).isEqualTo("\"a\\nb\\x00\\\"c\\\\\"");
        assertThat(KilnException.quote("x".repeat(300))).hasSize(100 + 3);
        assertThat(KilnException.quote(null)).isEqualTo("null");
    }
}
