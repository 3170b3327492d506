package dev.kiln.dockerfile;

import dev.kiln.KilnException;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A {@code .dockerignore}, with the rules of Docker's pattern matcher (moby/patternmatcher): one pattern a line,
 * {@code #} lines are comments, blanks are trimmed, a leading {@code /} is dropped and the pattern cleaned as a path;
 * {@code *} and {@code ?} match within one path element, {@code [...]} a class, {@code **} any number of elements
 * (none too), the escape {@code \}; {@code !} makes an exception. A path is excluded when the last pattern that
 * matches it or one of its parent directories is not an exception.
 *
 * <p>The Dockerfile and the {@code .dockerignore} are always sent (the builder needs them); ignoring them only keeps
 * them out of COPY and ADD, as the reference says.
 */
public final class DockerIgnore {

    private record Rule(Pattern regex, boolean exception, String text) {
    }

    private final List<Rule> rules;

    private DockerIgnore(List<Rule> rules) {
        this.rules = rules;
    }

    public static DockerIgnore none() {
        return new DockerIgnore(List.of());
    }

    public static DockerIgnore parse(String text) {
        List<Rule> rules = new ArrayList<>();
        int n = 0;
        for (String raw : text.split("\r?\n")) {
            n++;
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            boolean exception = line.startsWith("!");
            if (exception) {
                line = line.substring(1).strip();
                if (line.isEmpty()) {
                    throw KilnException.invalid(".dockerignore:" + n + ": illegal exclusion pattern: \"!\"");
                }
            }
            String cleaned = clean(line);
            if (cleaned.equals(".")) {
                cleaned = "";
            }
            try {
                rules.add(new Rule(Pattern.compile(regex(cleaned)), exception, line));
            } catch (PatternSyntaxException e) {
                throw KilnException.invalid(".dockerignore:" + n + ": bad pattern \"" + raw.strip() + "\"");
            }
        }
        return new DockerIgnore(List.copyOf(rules));
    }

    public boolean isEmpty() {
        return rules.isEmpty();
    }

    /** Whether {@code path} (relative to the context, {@code /}-separated) is left out of the context. */
    public boolean excluded(String path) {
        String p = clean(path);
        String[] parents = p.split("/");
        boolean matched = false;
        for (Rule r : rules) {
            boolean match = r.regex.matcher(p).matches();
            if (!match) {
                StringBuilder parent = new StringBuilder();
                for (int i = 0; i < parents.length - 1 && !match; i++) {
                    if (i > 0) {
                        parent.append('/');
                    }
                    parent.append(parents[i]);
                    match = r.regex.matcher(parent).matches();
                }
            }
            if (match) {
                matched = !r.exception;
            }
        }
        return matched;
    }

    /**
     * Whether a directory that is itself excluded may still hold an exception (so a walk must go into it): any
     * exception pattern does, unless it cannot match below {@code dir}, which is not worth proving here.
     */
    public boolean hasExceptions() {
        return rules.stream().anyMatch(Rule::exception);
    }

    /** Go's {@code filepath.Clean} on a relative {@code /} path, with a leading {@code /} dropped. */
    static String clean(String path) {
        List<String> parts = new ArrayList<>();
        for (String part : path.split("/")) {
            if (part.isEmpty() || part.equals(".")) {
                continue;
            }
            if (part.equals("..")) {
                if (!parts.isEmpty() && !parts.getLast().equals("..")) {
                    parts.removeLast();
                }
                continue; // above the root of the context is the root
            }
            parts.add(part);
        }
        return parts.isEmpty() ? "." : String.join("/", parts);
    }

    private static String regex(String pattern) {
        StringBuilder re = new StringBuilder("^");
        for (int i = 0; i < pattern.length(); i++) {
            char c = pattern.charAt(i);
            if (c == '*') {
                if (i + 1 < pattern.length() && pattern.charAt(i + 1) == '*') {
                    i++;
                    if (i + 1 < pattern.length() && pattern.charAt(i + 1) == '/') {
                        i++;
                    }
                    re.append(i + 1 >= pattern.length() ? ".*" : "(.*/)?");
                } else {
                    re.append("[^/]*");
                }
            } else if (c == '?') {
                re.append("[^/]");
            } else if (c == '\\') {
                if (i + 1 < pattern.length()) {
                    re.append(Pattern.quote(String.valueOf(pattern.charAt(++i))));
                } else {
                    re.append("\\\\");
                }
            } else if (c == '[') {
                int end = pattern.indexOf(']', i + 1);
                if (end < 0) {
                    throw new PatternSyntaxException("unclosed [", pattern, i);
                }
                String cls = pattern.substring(i + 1, end);
                if (cls.startsWith("^") || cls.startsWith("!")) {
                    cls = "^" + cls.substring(1);
                }
                re.append('[').append(cls.replace("\\", "\\\\").replace("[", "\\[")).append(']');
                i = end;
            } else if (".+()|{}^$".indexOf(c) >= 0) {
                re.append('\\').append(c);
            } else {
                re.append(c);
            }
        }
        return re.append('$').toString();
    }
}
