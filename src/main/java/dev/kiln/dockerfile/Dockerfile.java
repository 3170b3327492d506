package dev.kiln.dockerfile;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A parsed Dockerfile, as the Dockerfile reference and Docker's own parser read one: parser directives at the top
 * ({@code # escape=`}, {@code # syntax=...}), comments, line continuations with the escape character (comment and
 * empty lines inside a continuation are dropped), {@code --flags}, the exec (JSON) form, and here-documents after
 * RUN, COPY and ADD. Variables are not expanded here: that needs the build's state ({@link ShellWords}).
 *
 * <p>{@code notes} are what the build should tell the user (a {@code # syntax} directive kiln does not follow).
 */
public record Dockerfile(String file, char escape, List<Instruction> instructions, List<String> notes) {

    static final Set<String> KEYWORDS = Set.of("FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD",
            "COPY", "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL");
    private static final Set<String> FLAGGED = Set.of("FROM", "RUN", "COPY", "ADD", "HEALTHCHECK");
    private static final Set<String> HEREDOC = Set.of("RUN", "COPY", "ADD");
    private static final Pattern DIRECTIVE = Pattern.compile("^#\\s*([a-zA-Z][a-zA-Z0-9]*)\\s*=\\s*(.+?)\\s*$");
    private static final Pattern HEREDOC_START = Pattern.compile("<<(-?)(['\"]?)([a-zA-Z_][a-zA-Z0-9_]*)\\2");
    private static final ObjectMapper JSON = new ObjectMapper();

    public static Dockerfile parse(String file, String text) {
        if (text.startsWith("\uFEFF")) {
            text = text.substring(1);
        }
        String[] lines = text.split("\r?\n", -1);
        char escape = '\\';
        List<String> notes = new ArrayList<>();
        Map<String, String> directives = new LinkedHashMap<>();
        int n = 0;
        for (; n < lines.length; n++) {
            Matcher m = DIRECTIVE.matcher(lines[n]);
            if (!m.matches()) {
                break;
            }
            String key = m.group(1).toLowerCase(Locale.ROOT);
            if (!key.equals("escape") && !key.equals("syntax") && !key.equals("check")) {
                break; // an unknown directive is a comment, and ends the directives
            }
            if (directives.put(key, m.group(2)) != null) {
                throw DockerfileException.at(file, n + 1, null, "only one " + key + " parser directive can be used");
            }
        }
        if (directives.containsKey("escape")) {
            String e = directives.get("escape");
            if (!e.equals("\\") && !e.equals("`")) {
                throw DockerfileException.at(file, 1, null, "invalid escape token '" + e + "' does not match ` or \\");
            }
            escape = e.charAt(0);
        }
        if (directives.containsKey("syntax")) {
            notes.add("note: the syntax directive (" + directives.get("syntax") + ") is ignored: kiln's builder reads "
                    + "the Dockerfile with its own frontend");
        }
        List<Instruction> out = new ArrayList<>();
        for (int i = n; i < lines.length; ) {
            String first = stripLeft(lines[i]);
            int start = i + 1;
            i++;
            if (first.isEmpty() || first.startsWith("#")) {
                continue;
            }
            StringBuilder joined = new StringBuilder();
            StringBuilder original = new StringBuilder(lines[start - 1].strip());
            String piece = first;
            boolean more = continues(piece, escape);
            joined.append(more ? trimContinuation(piece, escape) : piece);
            while (more && i < lines.length) {
                String next = lines[i++];
                original.append('\n').append(next);
                String left = stripLeft(next);
                if (left.startsWith("#") || left.isEmpty()) {
                    continue; // comments and empty lines inside a continuation are dropped, as Docker does
                }
                more = continues(next, escape);
                joined.append(more ? trimContinuation(next, escape) : next);
            }
            Instruction instr = instruction(file, start, joined.toString(), original.toString(), escape);
            if (HEREDOC.contains(instr.keyword()) && instr.json() == null) {
                List<Instruction.Heredoc> docs = new ArrayList<>();
                Matcher h = HEREDOC_START.matcher(instr.rest());
                while (h.find()) {
                    boolean chomp = !h.group(1).isEmpty();
                    String name = h.group(3);
                    StringBuilder body = new StringBuilder();
                    boolean ended = false;
                    while (i < lines.length) {
                        String line = lines[i++];
                        original.append('\n').append(line);
                        String cmp = chomp ? line.replaceFirst("^\t+", "") : line;
                        if (cmp.equals(name)) {
                            ended = true;
                            break;
                        }
                        body.append(cmp).append('\n');
                    }
                    if (!ended) {
                        throw DockerfileException.at(file, start, instr.keyword(), "here-document <<" + name
                                + " has no terminating line \"" + name + "\"");
                    }
                    docs.add(new Instruction.Heredoc(name, body.toString(), h.group(2).isEmpty(), chomp));
                }
                if (!docs.isEmpty()) {
                    instr = new Instruction(instr.keyword(), instr.flags(), instr.rest(), null, List.copyOf(docs),
                            instr.line(), file, original.toString());
                }
            }
            out.add(instr);
        }
        return new Dockerfile(file, escape, List.copyOf(out), List.copyOf(notes));
    }

    private static Instruction instruction(String file, int line, String text, String original, char escape) {
        String s = text.strip();
        int sp = indexOfSpace(s);
        String word = sp < 0 ? s : s.substring(0, sp);
        String keyword = word.toUpperCase(Locale.ROOT);
        if (!KEYWORDS.contains(keyword)) {
            throw DockerfileException.at(file, line, null, "unknown instruction: " + word
                    + " (did you mean one of FROM, RUN, COPY, ADD, ENV, ARG, ...?)");
        }
        String rest = sp < 0 ? "" : s.substring(sp).strip();
        Map<String, String> flags = new LinkedHashMap<>();
        if (FLAGGED.contains(keyword)) {
            while (rest.startsWith("--")) {
                int end = flagEnd(rest);
                String flag = rest.substring(2, end);
                rest = rest.substring(end).strip();
                if (flag.isEmpty()) {
                    break; // "--" ends the flags
                }
                int eq = flag.indexOf('=');
                String name = eq < 0 ? flag : flag.substring(0, eq);
                String value = eq < 0 ? "true" : unquote(flag.substring(eq + 1));
                if (flags.put(name, value) != null && !name.equals("mount")) {
                    throw DockerfileException.at(file, line, keyword, "duplicate flag --" + name);
                }
            }
        }
        List<String> json = null;
        if (rest.startsWith("[") && Set.of("RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME")
                .contains(keyword)) {
            json = jsonArray(rest);
        }
        if (keyword.equals("SHELL") && json == null) {
            throw DockerfileException.at(file, line, keyword, "SHELL requires the arguments to be in JSON form");
        }
        return new Instruction(keyword, Map.copyOf(flags), rest, json, List.of(), line, file, original.strip());
    }

    /** The exec form: a JSON array of strings, or null when it is not one (then it is the shell form, as Docker). */
    private static List<String> jsonArray(String rest) {
        try {
            var node = JSON.readTree(rest);
            if (node == null || !node.isArray()) {
                return null;
            }
            List<String> out = new ArrayList<>();
            for (var e : node) {
                if (!e.isTextual()) {
                    return null;
                }
                out.add(e.textValue());
            }
            return List.copyOf(out);
        } catch (JsonProcessingException e) {
            return null;
        }
    }

    private static int flagEnd(String s) {
        char quote = 0;
        for (int i = 2; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == quote) {
                    quote = 0;
                }
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (Character.isWhitespace(c)) {
                return i;
            }
        }
        return s.length();
    }

    private static String unquote(String v) {
        if (v.length() >= 2 && (v.startsWith("\"") && v.endsWith("\"") || v.startsWith("'") && v.endsWith("'"))) {
            return v.substring(1, v.length() - 1);
        }
        return v;
    }

    private static int indexOfSpace(String s) {
        for (int i = 0; i < s.length(); i++) {
            if (Character.isWhitespace(s.charAt(i))) {
                return i;
            }
        }
        return -1;
    }

    private static String stripLeft(String s) {
        return s.stripLeading();
    }

    /** Ends with the escape character, perhaps followed by blanks: the instruction goes on on the next line. */
    private static boolean continues(String line, char escape) {
        String t = line.stripTrailing();
        return !t.isEmpty() && t.charAt(t.length() - 1) == escape;
    }

    private static String trimContinuation(String line, char escape) {
        String t = line.stripTrailing();
        return t.substring(0, t.length() - 1);
    }
}
