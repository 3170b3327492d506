package dev.kiln.cli;

import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.Annotation;
import java.lang.classfile.AnnotationElement;
import java.lang.classfile.AnnotationValue;
import java.lang.classfile.Attributes;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.FieldModel;
import java.lang.classfile.attribute.RuntimeVisibleAnnotationsAttribute;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The picocli annotations of the CLI's command classes as plain values, for {@link OptionModel}: read from the class
 * files, or from the index the AOT training writes beside the cache (target/kiln-options.idx, which bin/kiln names
 * with {@code -Dkiln.optionIndex} when it is newer than the jar). Reading class files means opening the jar and
 * parsing them with {@code java.lang.classfile}: a third of a {@code kiln ps} on a loaded host (issue 17); the index
 * is one small file. A class the index does not hold, or an index that cannot be read, falls back to the class files.
 *
 * <p>The index has a line per class: its name, a space, and the class as JSON: {@code {"command": {element: value} (when annotated), "fields": [{"field", "type", "elements"}]}},
 * one entry per picocli annotation of a field ({@code @Spec} left out); a value is a string, a boolean, a list, or
 * {@code {"enum": NAME}}, and JSON null for anything else and for the elements the parser only needs the names of
 * (descriptions, labels: they would make the index four times as long to read).
 */
final class OptionIndex {
    private OptionIndex() {
    }

    static final String COMMAND = "command";
    static final String FIELDS = "fields";
    static final String FIELD = "field";
    static final String TYPE = "type";
    static final String ELEMENTS = "elements";
    /** The system property that names the index. */
    static final String PROPERTY = "kiln.optionIndex";

    /** Loaded on first use: the hot path reads it once per process. */
    private static final class Loaded {
        static final Map<String, String> INDEX = load(System.getProperty(PROPERTY));
    }

    /** The index's lines by class name, each class still as its JSON text: a command parses only its own classes. */
    static Map<String, String> load(String file) {
        if (file == null || file.isEmpty()) {
            return Map.of();
        }
        try {
            String text = Files.readString(Path.of(file));
            Map<String, String> out = new java.util.HashMap<>();
            for (int at = 0, end; at < text.length(); at = end + 1) {
                end = text.indexOf('\n', at);
                if (end < 0) {
                    end = text.length();
                }
                int space = text.indexOf(' ', at);
                if (space > at && space < end) {
                    out.put(text.substring(at, space), text.substring(space + 1, end));
                }
            }
            return out;
        } catch (IOException | RuntimeException e) {
            return Map.of(); // a missing or damaged index: the class files say the same, more slowly
        }
    }

    /** The index bin/kiln names, read on first use; empty without one. */
    static Map<String, String> loaded() {
        return Loaded.INDEX;
    }

    /** {@code c}'s annotations, from {@code index} or its class file; null when neither can be read. */
    static Map<String, Object> annotations(Class<?> c, Map<String, String> index) {
        String line = index.get(c.getName());
        if (line != null) {
            try {
                if (Json.parse(line).value() instanceof Map<?, ?> m && m.get(FIELDS) instanceof List<?>) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> model = (Map<String, Object>) m;
                    return model;
                }
            } catch (IllegalArgumentException e) {
                // a damaged line: the class file
            }
        }
        return fromClassFile(c);
    }

    /** Writes the index of {@code classes} (the command classes, their superclasses and mixins) to {@code file}. */
    static void write(List<Class<?>> classes, Path file) throws IOException {
        Map<String, Object> index = new LinkedHashMap<>();
        StringBuilder text = new StringBuilder();
        List<Class<?>> todo = new ArrayList<>(classes);
        while (!todo.isEmpty()) {
            Class<?> c = todo.removeFirst();
            if (c == null || c == Object.class || index.containsKey(c.getName())) {
                continue;
            }
            Map<String, Object> model = fromClassFile(c);
            if (model == null) {
                continue;
            }
            index.put(c.getName(), model);
            text.append(c.getName()).append(' ').append(new Json(model)).append('\n');
            todo.add(c.getSuperclass());
            for (Object f : (List<?>) model.get(FIELDS)) {
                Map<?, ?> a = (Map<?, ?>) f;
                if (OptionModel.MIXIN.equals(a.get(TYPE))) {
                    try {
                        todo.add(c.getDeclaredField((String) a.get(FIELD)).getType());
                    } catch (NoSuchFieldException e) {
                        // a field the class file names is always there
                    }
                }
            }
        }
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, text, StandardCharsets.UTF_8);
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    static String enumConstant(Object v) {
        return v instanceof Map<?, ?> m && m.get("enum") instanceof String s ? s : null;
    }

    private static Map<String, Object> fromClassFile(Class<?> c) {
        ClassModel model = classModel(c);
        if (model == null) {
            return null;
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (Annotation a : annotations(model.findAttribute(Attributes.runtimeVisibleAnnotations()))) {
            if (a.className().stringValue().equals(OptionModel.COMMAND)) {
                out.put(COMMAND, elements(a));
            }
        }
        List<Object> fields = new ArrayList<>();
        for (FieldModel f : model.fields()) {
            for (Annotation a : annotations(f.findAttribute(Attributes.runtimeVisibleAnnotations()))) {
                String type = a.className().stringValue();
                if (!type.startsWith("Lpicocli/") || type.equals(OptionModel.SPEC)) {
                    continue;
                }
                Map<String, Object> field = new LinkedHashMap<>();
                field.put(FIELD, f.fieldName().stringValue());
                field.put(TYPE, type);
                field.put(ELEMENTS, elements(a));
                fields.add(field);
            }
        }
        out.put(FIELDS, fields);
        return out;
    }

    /** The elements whose values {@link OptionModel} reads; of the others (descriptions, labels) only the names. */
    private static final java.util.Set<String> READ = java.util.Set.of("names", "scope", "defaultValue", "arity",
            "usageHelp", "versionHelp", "required", "index");

    private static Map<String, Object> elements(Annotation a) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (AnnotationElement e : a.elements()) {
            String name = e.name().stringValue();
            out.put(name, READ.contains(name) ? value(e.value()) : Json.NULL);
        }
        return out;
    }

    private static Object value(AnnotationValue v) {
        return switch (v) {
            case AnnotationValue.OfString s -> s.stringValue();
            case AnnotationValue.OfBoolean b -> b.booleanValue();
            case AnnotationValue.OfEnum e -> Map.of("enum", e.constantName().stringValue());
            case AnnotationValue.OfArray arr -> {
                List<Object> out = new ArrayList<>();
                arr.values().forEach(x -> out.add(value(x)));
                yield out;
            }
            default -> Json.NULL; // numbers, classes, nested annotations: nothing the fast parser reads
        };
    }

    private static List<Annotation> annotations(Optional<RuntimeVisibleAnnotationsAttribute> attribute) {
        return attribute.map(RuntimeVisibleAnnotationsAttribute::annotations).orElse(List.of());
    }

    private static ClassModel classModel(Class<?> c) {
        String resource = c.getName().replace('.', '/') + ".class";
        ClassLoader loader = c.getClassLoader();
        try (InputStream in = loader == null ? null : loader.getResourceAsStream(resource)) {
            return in == null ? null : ClassFile.of().parse(in.readAllBytes());
        } catch (IOException | IllegalArgumentException e) {
            return null;
        }
    }
}
