package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/** Docker's {@code filters} query parameter: {@code {"label":{"a=b":true}}} or the older {@code {"label":["a=b"]}}. */
final class Filters {
    private Filters() {
    }

    static Map<String, List<String>> parse(String json) {
        Map<String, List<String>> out = new LinkedHashMap<>();
        if (json == null || json.isBlank()) {
            return out;
        }
        JsonNode root;
        try {
            root = DockerApi.JSON.readTree(json);
        } catch (IOException e) {
            throw KilnException.invalid("invalid filters: " + json);
        }
        if (!root.isObject()) {
            throw KilnException.invalid("invalid filters: " + json);
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            List<String> values = new ArrayList<>();
            // Docker's two shapes, {"k":["v"]} and {"k":{"v":true}}, with strings where strings go: never coerced
            JsonNode value = e.getValue();
            if (value.isArray()) {
                value.forEach(v -> values.add(filterText(e.getKey(), v)));
            } else if (value.isObject()) {
                value.fields().forEachRemaining(v -> {
                    if (!v.getValue().isBoolean()) {
                        throw KilnException.invalid("invalid filters: " + e.getKey() + "." + v.getKey()
                                + " must be true or false");
                    }
                    values.add(v.getKey());
                });
            } else {
                values.add(filterText(e.getKey(), value));
            }
            out.put(e.getKey(), values);
        }
        return out;
    }

    private static String filterText(String key, JsonNode v) {
        if (!v.isTextual()) {
            throw KilnException.invalid("invalid filters: the values of " + key + " must be strings");
        }
        return v.asText();
    }

    /** True when the filter {@code key} is absent, or when one of its values passes {@code test}. */
    static boolean any(Map<String, List<String>> filters, String key, Predicate<String> test) {
        List<String> values = filters.get(key);
        return values == null || values.isEmpty() || values.stream().anyMatch(test);
    }

    /** True when the filter {@code key} is absent, or when all its values pass {@code test} (Docker's labels). */
    static boolean all(Map<String, List<String>> filters, String key, Predicate<String> test) {
        List<String> values = filters.get(key);
        return values == null || values.stream().allMatch(test);
    }

    /** Refuses filters this endpoint does not know, naming them, as Docker does. */
    static void only(Map<String, List<String>> filters, List<String> known) {
        for (String k : filters.keySet()) {
            if (!known.contains(k)) {
                throw KilnException.invalid("invalid filter '" + k + "' (kiln supports " + String.join(", ", known)
                        + " here)");
            }
        }
    }
}
