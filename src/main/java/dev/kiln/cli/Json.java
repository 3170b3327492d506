package dev.kiln.cli;

import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * JSON for the hot commands ({@link HotCommands}): a reader into a small tree, and writers that print exactly as
 * Jackson's {@code writeValueAsString} and default pretty printer do. Jackson's first {@code ObjectMapper} costs a
 * {@code kiln ps} more than its round trip to kilnd (hundreds of classes, issue 17); the other commands keep Jackson.
 * A value is one of: {@code Map<String,Object>}, {@code List<Object>}, {@code String}, {@link Num}, {@code Boolean},
 * {@link #NULL}; the accessors follow Jackson's {@code JsonNode} ({@code path}, {@code asText}, ...), so a command
 * reads the same either way.
 */
final class Json implements Iterable<Json> {

    /** A number in the form Jackson prints it (integers as written, fractions as Java's double). */
    record Num(String text) {
    }

    /** JSON's null, which {@link #has} tells from a missing member. */
    static final Object NULL = new Object() {
        @Override
        public String toString() {
            return "null";
        }
    };
    private static final Object MISSING_VALUE = new Object();
    static final Json MISSING = new Json(MISSING_VALUE);

    private final Object value;

    Json(Object value) {
        this.value = value;
    }

    /** The tree's plain value (see the class comment); for {@link #write}. */
    Object value() {
        return value;
    }

    static Json parse(byte[] bytes) {
        return parse(new String(bytes, java.nio.charset.StandardCharsets.UTF_8));
    }

    static Json parse(String text) {
        Reader r = new Reader(text);
        Object v = r.value();
        r.space();
        if (r.i != text.length()) {
            throw r.error("unexpected data after the value");
        }
        return new Json(v);
    }

    Json path(String name) {
        return value instanceof Map<?, ?> m && m.containsKey(name) ? new Json(m.get(name)) : MISSING;
    }

    Json path(int index) {
        return value instanceof List<?> l && index >= 0 && index < l.size() ? new Json(l.get(index)) : MISSING;
    }

    /** Jackson's {@code at}: a JSON pointer such as {@code /Config/Tty}. */
    Json at(String pointer) {
        Json j = this;
        for (String part : pointer.substring(1).split("/")) {
            j = j.value instanceof List<?> && part.matches("\\d+") ? j.path(Integer.parseInt(part)) : j.path(part);
        }
        return j;
    }

    boolean has(String name) {
        return value instanceof Map<?, ?> m && m.containsKey(name);
    }

    boolean isMissing() {
        return value == MISSING_VALUE;
    }

    int size() {
        return value instanceof Map<?, ?> m ? m.size() : value instanceof List<?> l ? l.size() : 0;
    }

    String asText() {
        if (value instanceof String s) {
            return s;
        }
        if (value instanceof Num n) {
            return n.text();
        }
        if (value instanceof Boolean || value == NULL) {
            return value.toString();
        }
        return "";
    }

    String asText(String otherwise) {
        return value == NULL || isMissing() ? otherwise : asText();
    }

    long asLong() {
        try {
            if (value instanceof Num n) {
                return integral(n.text()) ? Long.parseLong(n.text()) : (long) Double.parseDouble(n.text());
            }
            if (value instanceof String s) {
                return Long.parseLong(s.strip());
            }
        } catch (NumberFormatException e) {
            return 0;
        }
        return value instanceof Boolean b && b ? 1 : 0;
    }

    /** Digits with an optional minus (no regular expression: this runs for every number of a listing). */
    private static boolean integral(String text) {
        int start = text.startsWith("-") ? 1 : 0;
        if (start == text.length()) {
            return false;
        }
        for (int k = start; k < text.length(); k++) {
            if (text.charAt(k) < '0' || text.charAt(k) > '9') {
                return false;
            }
        }
        return true;
    }

    int asInt() {
        return (int) asLong();
    }

    boolean asBoolean() {
        if (value instanceof Boolean b) {
            return b;
        }
        if (value instanceof String s) {
            return s.strip().equals("true");
        }
        return value instanceof Num && asLong() != 0;
    }

    /** An array's elements or an object's values, as Jackson iterates. */
    @Override
    public Iterator<Json> iterator() {
        List<Json> out = new ArrayList<>();
        Collection<?> items = value instanceof Map<?, ?> m ? m.values() : value instanceof List<?> l ? l : List.of();
        items.forEach(v -> out.add(new Json(v)));
        return out.iterator();
    }

    /** Compact, as Jackson's {@code writeValueAsString}. */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder();
        write(b, value, -1);
        return b.toString();
    }

    /** Indented as Jackson's default pretty printer: objects on lines, arrays inline, {@code "key" : value}. */
    String pretty() {
        StringBuilder b = new StringBuilder();
        write(b, value, 0);
        return b.toString();
    }

    /**
     * A request body: records (their components by name, nulls left out as the API's records say), lists, maps,
     * strings, numbers, booleans and enums. Null when the value holds anything else (or annotated components, which
     * may be renamed), for the caller to use Jackson.
     */
    static String request(Object body) {
        Object tree = tree(body);
        return tree == null ? null : new Json(tree).toString();
    }

    private static Object tree(Object v) {
        if (v == null) {
            return NULL;
        }
        if (v instanceof String || v instanceof Boolean) {
            return v;
        }
        if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
            return new Num(v.toString());
        }
        if (v instanceof Enum<?> e) {
            return e.name();
        }
        if (v instanceof Collection<?> c) {
            List<Object> out = new ArrayList<>();
            for (Object x : c) {
                Object t = tree(x);
                if (t == null) {
                    return null;
                }
                out.add(t);
            }
            return out;
        }
        if (v instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : m.entrySet()) {
                Object t = tree(e.getValue());
                if (!(e.getKey() instanceof String k) || t == null) {
                    return null;
                }
                out.put(k, t);
            }
            return out;
        }
        if (v instanceof Record r) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (RecordComponent c : r.getClass().getRecordComponents()) {
                if (c.getAnnotations().length > 0 || c.getAccessor().getAnnotations().length > 0) {
                    return null;
                }
                Object x;
                try {
                    c.getAccessor().setAccessible(true);
                    x = c.getAccessor().invoke(r);
                } catch (ReflectiveOperationException | RuntimeException e) {
                    return null;
                }
                if (x != null) {
                    Object t = tree(x);
                    if (t == null) {
                        return null;
                    }
                    out.put(c.getName(), t);
                }
            }
            return out;
        }
        return null; // doubles, dates, Optional...: Jackson's forms
    }

    /** Writes {@code v}; {@code nesting} -1: compact, else the depth of objects around it (Jackson indents by it). */
    private static void write(StringBuilder b, Object v, int nesting) {
        if (v instanceof Map<?, ?> m) {
            if (m.isEmpty()) {
                b.append(nesting < 0 ? "{}" : "{ }");
                return;
            }
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) {
                    b.append(',');
                }
                first = false;
                if (nesting >= 0) {
                    b.append('\n').append("  ".repeat(nesting + 1));
                }
                string(b, (String) e.getKey());
                b.append(nesting < 0 ? ":" : " : ");
                write(b, e.getValue(), nesting < 0 ? -1 : nesting + 1);
            }
            if (nesting >= 0) {
                b.append('\n').append("  ".repeat(nesting));
            }
            b.append('}');
        } else if (v instanceof List<?> l) {
            if (l.isEmpty()) {
                b.append(nesting < 0 ? "[]" : "[ ]");
                return;
            }
            b.append(nesting < 0 ? "[" : "[ ");
            for (int k = 0; k < l.size(); k++) {
                if (k > 0) {
                    b.append(nesting < 0 ? "," : ", ");
                }
                write(b, l.get(k), nesting);
            }
            b.append(nesting < 0 ? "]" : " ]");
        } else if (v instanceof String s) {
            string(b, s);
        } else if (v instanceof Num n) {
            b.append(n.text());
        } else {
            b.append(v); // Boolean, NULL
        }
    }

    /** A string as Jackson escapes it: quotes, backslash and control characters; the rest as is. */
    private static void string(StringBuilder b, String s) {
        b.append('"');
        for (int k = 0; k < s.length(); k++) {
            char c = s.charAt(k);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\b' -> b.append("\\b");
                case '\f' -> b.append("\\f");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04X", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        b.append('"');
    }

    /** A recursive-descent reader of RFC 8259 JSON. */
    private static final class Reader {
        private final String s;
        int i;

        Reader(String s) {
            this.s = s;
        }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException("bad JSON at offset " + i + ": " + what);
        }

        void space() {
            while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) {
                i++;
            }
        }

        Object value() {
            space();
            if (i >= s.length()) {
                throw error("no value");
            }
            char c = s.charAt(i);
            switch (c) {
                case '{' -> {
                    i++;
                    Map<String, Object> m = new LinkedHashMap<>();
                    space();
                    if (peek('}')) {
                        return m;
                    }
                    do {
                        space();
                        String k = string();
                        space();
                        expect(':');
                        m.put(k, value());
                        space();
                    } while (peek(','));
                    expect('}');
                    return m;
                }
                case '[' -> {
                    i++;
                    List<Object> l = new ArrayList<>();
                    space();
                    if (peek(']')) {
                        return l;
                    }
                    do {
                        l.add(value());
                        space();
                    } while (peek(','));
                    expect(']');
                    return l;
                }
                case '"' -> {
                    return string();
                }
                default -> {
                    if (s.startsWith("true", i)) {
                        i += 4;
                        return Boolean.TRUE;
                    }
                    if (s.startsWith("false", i)) {
                        i += 5;
                        return Boolean.FALSE;
                    }
                    if (s.startsWith("null", i)) {
                        i += 4;
                        return NULL;
                    }
                    int start = i;
                    while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
                        i++;
                    }
                    if (start == i) {
                        throw error("unexpected '" + c + "'");
                    }
                    return number(s.substring(start, i));
                }
            }
        }

        /** Jackson's reading of a number, so that it prints back as Jackson prints it: a fraction as a double. */
        private Num number(String text) {
            if (integral(text)) {
                return new Num(text);
            }
            try {
                return new Num(Double.toString(Double.parseDouble(text)));
            } catch (NumberFormatException e) {
                throw error("bad number " + text);
            }
        }

        private boolean peek(char c) {
            if (i < s.length() && s.charAt(i) == c) {
                i++;
                return true;
            }
            return false;
        }

        private void expect(char c) {
            if (!peek(c)) {
                throw error("expected '" + c + "'");
            }
        }

        private String string() {
            expect('"');
            // most strings have no escapes: one scan and one substring (the CLI runs this interpreted, where a
            // StringBuilder append per character made reading a 15 kB document take 20 ms)
            int start = i;
            int n = s.length();
            while (i < n) {
                char c = s.charAt(i);
                if (c == '"') {
                    return s.substring(start, i++);
                }
                if (c == '\\') {
                    break;
                }
                i++;
            }
            i = start;
            StringBuilder b = new StringBuilder();
            while (true) {
                if (i >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(i++);
                if (c == '"') {
                    return b.toString();
                }
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                if (i >= s.length()) {
                    throw error("unterminated string");
                }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case 'r' -> b.append('\r');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'u' -> {
                        if (i + 4 > s.length()) {
                            throw error("short \\u escape");
                        }
                        try {
                            b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        } catch (NumberFormatException x) {
                            throw error("bad \\u escape");
                        }
                        i += 4;
                    }
                    default -> b.append(e); // \" \\ \/
                }
            }
        }
    }
}
