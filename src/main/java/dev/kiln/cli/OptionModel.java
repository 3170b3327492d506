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
import java.lang.reflect.Field;
import java.lang.reflect.ParameterizedType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A command's options and parameters, read from the picocli annotations in its class file rather than through
 * reflection: reading annotations reflectively makes the JVM generate a proxy class per annotation type, and picocli's
 * model adds converters, help and interpolation; both cost more than the rest of a {@code kiln ps} (issue 17). The
 * same annotations stay the one definition of every command, so an option added to a command is parsed here too.
 * Whatever this reader does not understand it marks {@link #complete} false or the option {@code supported} false,
 * and {@link HotCommands} then leaves the command line to picocli.
 */
record OptionModel(List<Opt> options, List<Param> params, boolean complete) {

    /** An {@code @Option} field: its names, where it is, and whether the fast parser can set it. */
    record Opt(List<String> names, Object owner, Field field, Kind kind, boolean inherited, boolean supported,
               String defaultValue) {
    }

    /** A {@code @Parameters} field: its index range ({@code to} -1: open) and the least number of values it needs. */
    record Param(Object owner, Field field, Kind kind, int from, int to, int min) {
    }

    /** The field types the fast parser converts to; anything else is left to picocli. */
    enum Kind { FLAG, STRING, PATH, INT, LONG, STRINGS, PATHS, OTHER }

    private static final String OPTION = "Lpicocli/CommandLine$Option;";
    private static final String PARAMETERS = "Lpicocli/CommandLine$Parameters;";
    private static final String MIXIN = "Lpicocli/CommandLine$Mixin;";
    private static final String SPEC = "Lpicocli/CommandLine$Spec;";
    private static final String COMMAND = "Lpicocli/CommandLine$Command;";
    /** Annotation attributes that do not change how a value is parsed. */
    private static final Set<String> HARMLESS = Set.of("names", "description", "paramLabel", "hidden", "order",
            "descriptionKey", "showDefaultValue", "hideParamSyntax", "scope", "defaultValue", "index", "arity",
            "required", "usageHelp", "versionHelp");
    /** {@code @Command} attributes that do not add parsing (sub-commands, standard help options do). */
    private static final Set<String> HARMLESS_COMMAND = Set.of("name", "description", "aliases", "hidden",
            "versionProvider", "header", "footer", "sortOptions");

    /** The model of {@code command}'s class (and its superclasses and mixins), the objects it sets included. */
    static OptionModel of(Object command) {
        List<Opt> options = new ArrayList<>();
        List<Param> params = new ArrayList<>();
        boolean complete = read(command, options, params, true);
        return new OptionModel(options, params, complete);
    }

    private static boolean read(Object owner, List<Opt> options, List<Param> params, boolean top) {
        boolean complete = true;
        for (Class<?> c = owner.getClass(); c != null && c != Object.class; c = c.getSuperclass()) {
            ClassModel model = classModel(c);
            if (model == null) {
                return false;
            }
            if (top && c == owner.getClass()) {
                for (Annotation a : annotations(model.findAttribute(Attributes.runtimeVisibleAnnotations()))) {
                    if (a.className().stringValue().equals(COMMAND)) {
                        complete &= command(a, options);
                    }
                }
            }
            for (FieldModel f : model.fields()) {
                for (Annotation a : annotations(f.findAttribute(Attributes.runtimeVisibleAnnotations()))) {
                    String type = a.className().stringValue();
                    if (!type.startsWith("Lpicocli/") || type.equals(SPEC)) {
                        continue;
                    }
                    Field field;
                    try {
                        field = c.getDeclaredField(f.fieldName().stringValue());
                        field.setAccessible(true);
                    } catch (ReflectiveOperationException | RuntimeException e) {
                        return false;
                    }
                    switch (type) {
                        case OPTION -> options.add(option(owner, field, a));
                        case PARAMETERS -> {
                            Param p = param(owner, field, a);
                            if (p == null) {
                                complete = false;
                            } else {
                                params.add(p);
                            }
                        }
                        case MIXIN -> {
                            try {
                                Object mixin = field.getType().getDeclaredConstructor().newInstance();
                                field.set(owner, mixin);
                                complete &= read(mixin, options, params, false);
                            } catch (ReflectiveOperationException | RuntimeException e) {
                                complete = false;
                            }
                        }
                        default -> complete = false; // @ArgGroup, @ParentCommand, @Unmatched…: picocli's
                    }
                }
            }
        }
        return complete;
    }

    /**
     * Whether the fast parser can take a command with this {@code @Command}: not with sub-commands and the like; its
     * standard help options ({@code -h}, {@code --help}, {@code -V}, {@code --version}) are picocli's to answer.
     */
    private static boolean command(Annotation a, List<Opt> options) {
        boolean ok = true;
        for (AnnotationElement e : a.elements()) {
            String n = e.name().stringValue();
            if (n.equals("mixinStandardHelpOptions")) {
                options.add(new Opt(List.of("-h", "--help", "-V", "--version"), null, null, Kind.OTHER, false, false,
                        null));
            } else {
                ok &= HARMLESS_COMMAND.contains(n);
            }
        }
        return ok;
    }

    private static List<Annotation> annotations(
            java.util.Optional<java.lang.classfile.attribute.RuntimeVisibleAnnotationsAttribute> attribute) {
        return attribute.map(r -> r.annotations()).orElse(List.of());
    }

    private static Opt option(Object owner, Field field, Annotation a) {
        List<String> names = List.of();
        boolean supported = true;
        boolean inherited = false;
        String defaultValue = null;
        Kind kind = kind(field);
        for (AnnotationElement e : a.elements()) {
            String n = e.name().stringValue();
            AnnotationValue v = e.value();
            switch (n) {
                case "names" -> names = strings(v);
                case "scope" -> inherited = v instanceof AnnotationValue.OfEnum en
                        && en.constantName().stringValue().equals("INHERIT");
                case "defaultValue" -> defaultValue = v instanceof AnnotationValue.OfString s ? s.stringValue() : null;
                case "arity" -> supported &= v instanceof AnnotationValue.OfString s
                        && s.stringValue().equals(kind == Kind.FLAG ? "0" : "1");
                // help options and required ones are left to picocli: it prints the help, or the error
                case "usageHelp", "versionHelp", "required" -> supported &= v instanceof AnnotationValue.OfBoolean b
                        && !b.booleanValue();
                default -> supported &= HARMLESS.contains(n);
            }
        }
        if (defaultValue != null && defaultValue.contains("${")) {
            supported = false;
        }
        return new Opt(names, owner, field, kind, inherited, supported && kind != Kind.OTHER, defaultValue);
    }

    /** A parameter's index range and arity, or null when they are not in the plain forms. */
    private static Param param(Object owner, Field field, Annotation a) {
        Kind kind = kind(field);
        boolean many = kind == Kind.STRINGS || kind == Kind.PATHS;
        String index = null;
        String arity = null;
        for (AnnotationElement e : a.elements()) {
            String n = e.name().stringValue();
            if (n.equals("index") && e.value() instanceof AnnotationValue.OfString s) {
                index = s.stringValue();
            } else if (n.equals("arity") && e.value() instanceof AnnotationValue.OfString s) {
                arity = s.stringValue();
            } else if (!HARMLESS.contains(n) || n.equals("required") || n.equals("defaultValue")) {
                return null;
            }
        }
        if (kind == Kind.OTHER || kind == Kind.FLAG) {
            return null;
        }
        int from;
        int to;
        if (index == null) {
            from = 0;
            to = many ? -1 : 0;
        } else if (index.matches("\\d+")) {
            from = Integer.parseInt(index);
            to = from;
        } else if (index.matches("\\d+\\.\\.\\*")) {
            from = Integer.parseInt(index.substring(0, index.indexOf('.')));
            to = -1;
        } else {
            return null;
        }
        if ((to == -1) != many) {
            return null;
        }
        // a missing value is picocli's to report: min 1 for single values and "1..*", 0 for "0..1", "0..*" and an
        // index range without an arity
        int min;
        if (arity == null) {
            min = many ? (index == null ? 1 : 0) : 1;
        } else if (arity.equals("1") || arity.equals("1..*")) {
            min = 1;
        } else if (arity.equals("0..1") || arity.equals("0..*")) {
            min = 0;
        } else {
            return null;
        }
        return new Param(owner, field, kind, from, to, min);
    }

    private static Kind kind(Field f) {
        Class<?> t = f.getType();
        if (t == boolean.class || t == Boolean.class) {
            return Kind.FLAG;
        } else if (t == String.class) {
            return Kind.STRING;
        } else if (t == Path.class) {
            return Kind.PATH;
        } else if (t == int.class || t == Integer.class) {
            return Kind.INT;
        } else if (t == long.class || t == Long.class) {
            return Kind.LONG;
        } else if (t == List.class && f.getGenericType() instanceof ParameterizedType pt) {
            var arg = pt.getActualTypeArguments()[0];
            return arg == String.class ? Kind.STRINGS : arg == Path.class ? Kind.PATHS : Kind.OTHER;
        }
        return Kind.OTHER;
    }

    private static List<String> strings(AnnotationValue v) {
        if (v instanceof AnnotationValue.OfString s) {
            return List.of(s.stringValue());
        }
        List<String> out = new ArrayList<>();
        if (v instanceof AnnotationValue.OfArray arr) {
            for (AnnotationValue x : arr.values()) {
                if (x instanceof AnnotationValue.OfString s) {
                    out.add(s.stringValue());
                }
            }
        }
        return out;
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
