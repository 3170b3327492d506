package dev.kiln.isolation.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The subset of Swagger 2.0 that Firecracker's API definition uses for request bodies, as a checker: paths and
 * operations, the body parameter's schema, {@code $ref}, {@code type} (object, string, integer, number, boolean,
 * array), {@code required}, {@code properties} (closed: Firecracker rejects unknown fields), {@code enum},
 * {@code minimum}/{@code maximum}, {@code items}.
 */
final class SwaggerSchema {

    private final JsonNode spec;

    private SwaggerSchema(JsonNode spec) {
        this.spec = spec;
    }

    static SwaggerSchema load(Path yaml) throws IOException {
        JsonNode spec = new ObjectMapper(new YAMLFactory()).readTree(yaml.toFile());
        if (!"2.0".equals(spec.path("swagger").asText())) throw new IllegalArgumentException(yaml + " is not Swagger 2.0");
        return new SwaggerSchema(spec);
    }

    String version() {
        return spec.path("info").path("version").asText();
    }

    /** Every problem of one request: its operation must exist, and its body must match the operation's body schema. */
    List<String> check(String method, String path, JsonNode body) {
        List<String> errors = new ArrayList<>();
        JsonNode op = operation(method, path, errors);
        if (op == null) return errors;
        JsonNode bodyParam = null;
        for (JsonNode p : op.path("parameters")) {
            if (p.path("in").asText().equals("body")) bodyParam = p;
        }
        if (bodyParam == null) {
            if (body != null) errors.add(method + " " + path + " takes no body");
        } else if (body == null) {
            if (bodyParam.path("required").asBoolean()) errors.add(method + " " + path + " needs a body");
        } else {
            validate(body, bodyParam.path("schema"), "body", errors);
        }
        return errors;
    }

    /** The body schema's definition name ({@code $ref}) of an operation, e.g. "Drive" for PUT /drives/{drive_id}. */
    String bodyDefinition(String method, String path) {
        JsonNode op = operation(method, path, new ArrayList<>());
        if (op == null) return null;
        for (JsonNode p : op.path("parameters")) {
            if (p.path("in").asText().equals("body")) {
                String ref = p.path("schema").path("$ref").asText();
                return ref.substring(ref.lastIndexOf('/') + 1);
            }
        }
        return null;
    }

    /**
     * When the API accepts an operation, as its summary says: "pre-boot" ("Pre-boot only."), "post-boot"
     * ("Post-boot only."), or "any".
     */
    String phase(String method, String path) {
        JsonNode op = operation(method, path, new ArrayList<>());
        String summary = op == null ? "" : op.path("summary").asText();
        return summary.contains("Pre-boot only") ? "pre-boot" : summary.contains("Post-boot only") ? "post-boot" : "any";
    }

    private JsonNode operation(String method, String path, List<String> errors) {
        Iterator<Map.Entry<String, JsonNode>> paths = spec.path("paths").fields();
        while (paths.hasNext()) {
            Map.Entry<String, JsonNode> e = paths.next();
            if (!matches(e.getKey(), path)) continue;
            JsonNode op = e.getValue().get(method.toLowerCase());
            if (op == null) {
                errors.add(e.getKey() + " has no " + method);
                return null;
            }
            for (JsonNode p : op.path("parameters")) {
                if (p.path("in").asText().equals("path") && !p.path("type").asText("string").equals("string")) {
                    errors.add("path parameter " + p.path("name").asText() + " is not a string");
                }
            }
            return op;
        }
        errors.add("no path " + path + " in the API definition");
        return null;
    }

    /** "/drives/{drive_id}" matches "/drives/rw". */
    private static boolean matches(String template, String path) {
        String[] t = template.split("/", -1);
        String[] p = path.split("/", -1);
        if (t.length != p.length) return false;
        for (int i = 0; i < t.length; i++) {
            boolean param = t[i].startsWith("{") && t[i].endsWith("}");
            if (param ? p[i].isEmpty() : !t[i].equals(p[i])) return false;
        }
        return true;
    }

    void validate(JsonNode value, JsonNode schema, String where, List<String> errors) {
        if (schema.has("$ref")) {
            String ref = schema.get("$ref").asText();
            if (!ref.startsWith("#/definitions/")) {
                errors.add(where + ": unsupported $ref " + ref);
                return;
            }
            JsonNode target = spec.path("definitions").get(ref.substring("#/definitions/".length()));
            if (target == null) {
                errors.add(where + ": dangling $ref " + ref);
                return;
            }
            validate(value, target, where, errors);
            return;
        }
        String type = schema.path("type").asText(schema.has("properties") ? "object" : "");
        switch (type) {
            case "object" -> {
                if (!value.isObject()) {
                    errors.add(where + ": expected an object, got " + value.getNodeType());
                    return;
                }
                for (JsonNode r : schema.path("required")) {
                    if (!value.has(r.asText())) errors.add(where + ": required property " + r.asText() + " is missing");
                }
                JsonNode props = schema.path("properties");
                Iterator<Map.Entry<String, JsonNode>> fields = value.fields();
                while (fields.hasNext()) {
                    Map.Entry<String, JsonNode> f = fields.next();
                    JsonNode p = props.get(f.getKey());
                    if (p == null) {
                        errors.add(where + ": unknown property " + f.getKey());
                    } else {
                        validate(f.getValue(), p, where + "." + f.getKey(), errors);
                    }
                }
            }
            case "string" -> {
                if (!value.isTextual()) errors.add(where + ": expected a string, got " + value.getNodeType());
            }
            case "integer" -> {
                if (!value.isIntegralNumber()) errors.add(where + ": expected an integer, got " + value.getNodeType());
            }
            case "number" -> {
                if (!value.isNumber()) errors.add(where + ": expected a number, got " + value.getNodeType());
            }
            case "boolean" -> {
                if (!value.isBoolean()) errors.add(where + ": expected a boolean, got " + value.getNodeType());
            }
            case "array" -> {
                if (!value.isArray()) {
                    errors.add(where + ": expected an array, got " + value.getNodeType());
                    return;
                }
                for (int i = 0; i < value.size(); i++) validate(value.get(i), schema.path("items"), where + "[" + i + "]", errors);
            }
            case "" -> errors.add(where + ": the schema has no type this checker knows");
            default -> errors.add(where + ": unsupported schema type " + type);
        }
        if (schema.has("enum")) {
            boolean found = false;
            for (JsonNode e : schema.get("enum")) found |= e.asText().equals(value.asText()) && value.isValueNode();
            if (!found) errors.add(where + ": " + value + " is not one of " + schema.get("enum"));
        }
        if (schema.has("minimum") && value.isNumber() && value.asDouble() < schema.get("minimum").asDouble()) {
            errors.add(where + ": " + value + " is below the minimum " + schema.get("minimum"));
        }
        if (schema.has("maximum") && value.isNumber() && value.asDouble() > schema.get("maximum").asDouble()) {
            errors.add(where + ": " + value + " is above the maximum " + schema.get("maximum"));
        }
    }
}
