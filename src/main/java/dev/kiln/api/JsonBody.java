package dev.kiln.api;

import com.fasterxml.jackson.annotation.JsonSetter;
import com.fasterxml.jackson.annotation.Nulls;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.exc.InvalidNullException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.type.LogicalType;
import dev.kiln.KilnException;

import java.io.IOException;
import java.io.InputStream;
import java.util.Collection;
import java.util.List;

/**
 * Request bodies in JSON, typed as strictly as Docker's Go decoder types them: a value of the wrong JSON type is a
 * 400 naming its field ({@code HostConfig.Memory: expected an integer, not a string}), never coerced — no {@code "5"}
 * for 5, no {@code 1.5} for 1, no {@code "true"} for true, no {@code 5} for {@code "5"}, no {@code {}} or {@code ""}
 * for a list or an object. A single value stands for a list only where a field says so (Docker's Cmd and
 * Entrypoint). {@code null} is an absent field, as in Go: records see an absent field as null, so refusing null for
 * primitives would make every field mandatory.
 */
public final class JsonBody {

    static final ObjectMapper MAPPER = strict();

    private JsonBody() {
    }

    private static ObjectMapper strict() {
        JsonMapper mapper = JsonMapper.builder()
                .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
                .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                // a list holds values: [null] is no argument, no env entry, no DNS server
                .withConfigOverride(List.class, o -> o.setSetterInfo(JsonSetter.Value.forContentNulls(Nulls.FAIL)))
                .build();
        for (LogicalType type : LogicalType.values()) {
            mapper.coercionConfigFor(type)
                    .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.String, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.EmptyString, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.EmptyArray, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.EmptyObject, CoercionAction.Fail);
        }
        return mapper;
    }

    /** The body as {@code type}; an empty body, {@code null}, a syntax or a type error are INVALID, one line. */
    public static <T> T read(InputStream in, Class<T> type) {
        JsonNode tree;
        try {
            tree = MAPPER.readTree(in);
        } catch (JacksonException e) {
            throw KilnException.invalid("invalid JSON request body: " + firstLine(e.getOriginalMessage()));
        } catch (IOException e) {
            throw KilnException.invalid("cannot read the request body: " + firstLine(e.getMessage()));
        }
        if (tree == null || tree.isMissingNode() || tree.isNull()) {
            throw KilnException.invalid("the request body must be a JSON object");
        }
        return convert(tree, type);
    }

    /** {@code tree} as {@code type}, with the same rules and messages as {@link #read}. */
    private static <T> T convert(JsonNode tree, Class<T> type) {
        if (!tree.isObject() && !type.isAssignableFrom(JsonNode.class)) {
            throw KilnException.invalid("the request body must be a JSON object, not " + describe(tree));
        }
        try {
            return MAPPER.treeToValue(tree, type);
        } catch (UnrecognizedPropertyException e) {
            throw KilnException.invalid("invalid request body: unknown field " + path(e.getPath()));
        } catch (InvalidNullException e) {
            throw KilnException.invalid("invalid request body: " + path(e.getPath()) + ": expected a value, not null");
        } catch (JsonMappingException e) {
            throw KilnException.invalid("invalid request body: " + mismatch(tree, e));
        } catch (JacksonException e) {
            throw KilnException.invalid("invalid request body: " + firstLine(e.getOriginalMessage()));
        }
    }

    /** {@code FIELD: expected A, not B}: what the field's type wants against what the body holds there. */
    private static String mismatch(JsonNode tree, JsonMappingException e) {
        List<JsonMappingException.Reference> refs = e.getPath();
        if (refs.isEmpty()) {
            return firstLine(e.getOriginalMessage());
        }
        JsonNode found = tree;
        int depth = 0;
        for (JsonMappingException.Reference r : refs) {
            JsonNode next = r.getFieldName() != null ? found.get(r.getFieldName()) : found.get(r.getIndex());
            if (next == null) {
                break;
            }
            found = next;
            depth++;
        }
        String expected = expected(e);
        // a field taking one value or a list (Cmd) fails on its unwrapped value: name the field, not "Cmd[0]"
        if (depth < refs.size() && refs.get(depth).getFieldName() == null && depth == refs.size() - 1) {
            return path(refs.subList(0, depth)) + ": expected " + ("a string".equals(expected)
                    ? "a string or an array of strings" : expected + " or an array") + ", not " + describe(found);
        }
        if (expected == null || depth < refs.size()) {
            return path(refs) + ": " + firstLine(e.getOriginalMessage());
        }
        return path(refs) + ": expected " + expected + ", not " + describe(found);
    }

    private static String expected(JsonMappingException e) {
        Class<?> target = e instanceof com.fasterxml.jackson.databind.exc.MismatchedInputException m
                ? m.getTargetType() : null;
        if (target == null) {
            return null;
        }
        if (target == String.class || target == char.class || target == Character.class) {
            return "a string";
        }
        if (target == boolean.class || target == Boolean.class) {
            return "true or false";
        }
        if (target == long.class || target == int.class || target == short.class || target == byte.class
                || target == Long.class || target == Integer.class || target == Short.class || target == Byte.class) {
            return "an integer";
        }
        if (target == double.class || target == float.class || Number.class.isAssignableFrom(target)) {
            return "a number";
        }
        if (Collection.class.isAssignableFrom(target) || target.isArray()) {
            return "an array";
        }
        if (target.isEnum()) {
            return null;
        }
        return "an object";
    }

    private static String describe(JsonNode n) {
        return switch (n.getNodeType()) {
            case STRING -> "a string";
            case NUMBER -> n.isIntegralNumber() ? "an integer" : "a number with a fraction";
            case BOOLEAN -> n.asText();
            case NULL, MISSING -> "null";
            case ARRAY -> "an array";
            case OBJECT, POJO -> "an object";
            case BINARY -> "binary data";
        };
    }

    /** {@code HostConfig.Memory}, {@code Env[0]}, {@code Labels.KEY}: the field as the body spells it. */
    private static String path(List<JsonMappingException.Reference> refs) {
        StringBuilder b = new StringBuilder();
        for (JsonMappingException.Reference r : refs) {
            if (r.getFieldName() != null) {
                if (!b.isEmpty()) {
                    b.append('.');
                }
                b.append(KilnException.escape(r.getFieldName()));
            } else if (r.getIndex() >= 0) {
                b.append('[').append(r.getIndex()).append(']');
            }
        }
        return b.isEmpty() ? "the body" : b.toString();
    }

    private static String firstLine(String s) {
        return s == null ? "" : KilnException.escape(s.lines().findFirst().orElse(""));
    }
}
