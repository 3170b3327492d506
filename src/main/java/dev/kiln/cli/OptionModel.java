package dev.kiln.cli;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.reflect.Field;
import java.lang.reflect.ParameterizedType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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

    static final String OPTION = "Lpicocli/CommandLine$Option;";
    static final String PARAMETERS = "Lpicocli/CommandLine$Parameters;";
    static final String MIXIN = "Lpicocli/CommandLine$Mixin;";
    static final String SPEC = "Lpicocli/CommandLine$Spec;";
    static final String COMMAND = "Lpicocli/CommandLine$Command;";
    /** Annotation attributes that do not change how a value is parsed. */
    private static final Set<String> HARMLESS = Set.of("names", "description", "paramLabel", "hidden", "order",
            "descriptionKey", "showDefaultValue", "hideParamSyntax", "scope", "defaultValue", "index", "arity",
            "required", "usageHelp", "versionHelp");
    /** {@code @Command} attributes that do not add parsing (sub-commands, standard help options do). */
    private static final Set<String> HARMLESS_COMMAND = Set.of("name", "description", "aliases", "hidden",
            "versionProvider", "header", "footer", "sortOptions");

    /** The model of {@code command}'s class (and its superclasses and mixins), the objects it sets included. */
    static OptionModel of(Object command) {
        return of(command, OptionIndex.loaded());
    }

    /** As {@link #of(Object)}, with the annotations of the classes {@code index} holds read from it. */
    static OptionModel of(Object command, Map<String, String> index) {
        List<Opt> options = new ArrayList<>();
        List<Param> params = new ArrayList<>();
        boolean complete;
        try {
            complete = read(command, options, params, true, index);
        } catch (ClassCastException | NullPointerException e) {
            complete = false; // an index line of the wrong shape: picocli parses this command line
        }
        return new OptionModel(options, params, complete);
    }

    private static boolean read(Object owner, List<Opt> options, List<Param> params, boolean top,
                                Map<String, String> index) {
        boolean complete = true;
        for (Class<?> c = owner.getClass(); c != null && c != Object.class; c = c.getSuperclass()) {
            Map<String, Object> model = OptionIndex.annotations(c, index);
            if (model == null) {
                return false;
            }
            if (top && c == owner.getClass() && model.get(OptionIndex.COMMAND) instanceof Map<?, ?> command) {
                complete &= command(command, options);
            }
            for (Object o : (List<?>) model.get(OptionIndex.FIELDS)) {
                Map<?, ?> a = (Map<?, ?>) o;
                String type = (String) a.get(OptionIndex.TYPE);
                Map<?, ?> elements = (Map<?, ?>) a.get(OptionIndex.ELEMENTS);
                Field field;
                try {
                    field = c.getDeclaredField((String) a.get(OptionIndex.FIELD));
                    field.setAccessible(true);
                } catch (ReflectiveOperationException | RuntimeException e) {
                    return false;
                }
                switch (type) {
                    case OPTION -> options.add(option(owner, field, elements));
                    case PARAMETERS -> {
                        Param p = param(owner, field, elements);
                        if (p == null) {
                            complete = false;
                        } else {
                            params.add(p);
                        }
                    }
                    case MIXIN -> {
                        try {
                            Object mixin = field.getType().getDeclaredConstructor().newInstance();
                            set(field, owner, mixin);
                            complete &= read(mixin, options, params, false, index);
                        } catch (ReflectiveOperationException | RuntimeException e) {
                            complete = false;
                        }
                    }
                    default -> complete = false; // @ArgGroup, @ParentCommand, @Unmatched…: picocli's
                }
            }
        }
        return complete;
    }

    /**
     * Whether the fast parser can take a command with this {@code @Command}: not with sub-commands and the like; its
     * standard help options ({@code -h}, {@code --help}, {@code -V}, {@code --version}) are picocli's to answer.
     */
    private static boolean command(Map<?, ?> elements, List<Opt> options) {
        boolean ok = true;
        for (Object n : elements.keySet()) {
            if (n.equals("mixinStandardHelpOptions")) {
                options.add(new Opt(List.of("-h", "--help", "-V", "--version"), null, null, Kind.OTHER, false, false,
                        null));
            } else {
                ok &= HARMLESS_COMMAND.contains(n);
            }
        }
        return ok;
    }

    private static Opt option(Object owner, Field field, Map<?, ?> elements) {
        List<String> names = List.of();
        boolean supported = true;
        boolean inherited = false;
        String defaultValue = null;
        Kind kind = kind(field);
        for (Map.Entry<?, ?> e : elements.entrySet()) {
            String n = (String) e.getKey();
            Object v = e.getValue();
            switch (n) {
                case "names" -> names = strings(v);
                case "scope" -> inherited = "INHERIT".equals(OptionIndex.enumConstant(v));
                case "defaultValue" -> defaultValue = v instanceof String s ? s : null;
                case "arity" -> supported &= v instanceof String s && s.equals(kind == Kind.FLAG ? "0" : "1");
                // help options and required ones are left to picocli: it prints the help, or the error
                case "usageHelp", "versionHelp", "required" -> supported &= v instanceof Boolean b && !b;
                default -> supported &= HARMLESS.contains(n);
            }
        }
        if (defaultValue != null && defaultValue.contains("${")) {
            supported = false;
        }
        return new Opt(names, owner, field, kind, inherited, supported && kind != Kind.OTHER, defaultValue);
    }

    /** A parameter's index range and arity, or null when they are not in the plain forms. */
    private static Param param(Object owner, Field field, Map<?, ?> elements) {
        Kind kind = kind(field);
        boolean many = kind == Kind.STRINGS || kind == Kind.PATHS;
        String index = null;
        String arity = null;
        for (Map.Entry<?, ?> e : elements.entrySet()) {
            String n = (String) e.getKey();
            if (n.equals("index") && e.getValue() instanceof String s) {
                index = s;
            } else if (n.equals("arity") && e.getValue() instanceof String s) {
                arity = s;
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

    /**
     * Sets {@code field} of {@code owner} through a VarHandle. Core reflection's field accessors are method handles
     * adapted to (Object, Object), and the adaptation generates classes with java.lang.classfile at run time (~40 ms of
     * a {@code kiln ps} on a loaded host, issue 17); a VarHandle called with its own erased types goes straight to
     * the field. Primitive fields get their primitive type at the call, for the same reason.
     */
    static void set(Field field, Object owner, Object value) throws IllegalAccessException {
        VarHandle h = handle(field);
        Class<?> t = field.getType();
        if (t == boolean.class) {
            h.set(owner, (boolean) (Boolean) value);
        } else if (t == int.class) {
            h.set(owner, (int) (Integer) value);
        } else if (t == long.class) {
            h.set(owner, (long) (Long) value);
        } else if (t.isPrimitive()) {
            throw new IllegalAccessException("no fast setter for " + field);
        } else {
            h.set(owner, value);
        }
    }

    /** {@code field} of {@code owner}, as {@link #set} writes it. */
    static Object get(Field field, Object owner) throws IllegalAccessException {
        VarHandle h = handle(field);
        Class<?> t = field.getType();
        if (t == boolean.class) {
            return (boolean) h.get(owner);
        } else if (t == int.class) {
            return (int) h.get(owner);
        } else if (t == long.class) {
            return (long) h.get(owner);
        } else if (t.isPrimitive()) {
            throw new IllegalAccessException("no fast getter for " + field);
        }
        return (Object) h.get(owner);
    }

    private static VarHandle handle(Field field) throws IllegalAccessException {
        return MethodHandles.privateLookupIn(field.getDeclaringClass(), MethodHandles.lookup())
                .unreflectVarHandle(field);
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

    private static List<String> strings(Object v) {
        if (v instanceof String s) {
            return List.of(s);
        }
        List<String> out = new ArrayList<>();
        if (v instanceof List<?> arr) {
            for (Object x : arr) {
                if (x instanceof String s) {
                    out.add(s);
                }
            }
        }
        return out;
    }
}
