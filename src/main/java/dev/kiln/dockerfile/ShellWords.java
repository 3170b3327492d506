package dev.kiln.dockerfile;

import dev.kiln.KilnException;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * Docker's word processing for the instructions it expands (FROM, COPY, ADD, ENV, ARG, LABEL, EXPOSE, USER, WORKDIR,
 * VOLUME, STOPSIGNAL, ONBUILD's none): quotes removed ({@code '…'} literal, {@code "…"} with {@code $} expanded),
 * the escape character escaping the next character, {@code $VAR}, {@code ${VAR}}, {@code ${VAR:-word}},
 * {@code ${VAR-word}}, {@code ${VAR:+word}}, {@code ${VAR+word}}, {@code ${VAR:?msg}}, {@code ${VAR?msg}}. An
 * unset variable expands to nothing. The model is moby/buildkit's {@code frontend/dockerfile/shell/lex.go}.
 */
public final class ShellWords {

    private final char escape;
    private final Function<String, String> lookup;
    private String s;
    private int pos;

    /** {@code lookup} answers a variable's value, or null when it is not set. */
    public ShellWords(char escape, Function<String, String> lookup) {
        this.escape = escape;
        this.lookup = lookup;
    }

    /** One word: quotes removed, variables expanded, whitespace kept. */
    public String word(String text) {
        List<String> words = process(text, false);
        return words.isEmpty() ? "" : words.getFirst();
    }

    /** Words split at unquoted whitespace, each with quotes removed and variables expanded. */
    public List<String> words(String text) {
        return process(text, true);
    }

    /**
     * Variables expanded and nothing else: quotes and other characters stay as they are (a here-document's body);
     * the escape character before {@code $} keeps it literal.
     */
    public synchronized String expandOnly(String text) {
        s = text;
        pos = 0;
        StringBuilder out = new StringBuilder();
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c == escape && pos + 1 < s.length() && s.charAt(pos + 1) == '$') {
                out.append('$');
                pos += 2;
            } else if (c == '$') {
                out.append(variable());
            } else {
                out.append(c);
                pos++;
            }
        }
        return out.toString();
    }

    /**
     * The words of {@code text} split at whitespace outside quotes, nothing removed or expanded: how Docker splits
     * {@code ENV a="x y" b=c} into pairs before it processes each.
     */
    public static List<String> rawWords(String text, char escape) {
        List<String> out = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        char quote = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == escape && i + 1 < text.length() && quote != '\'') {
                word.append(c).append(text.charAt(++i));
                continue;
            }
            if (quote != 0) {
                if (c == quote) {
                    quote = 0;
                }
                word.append(c);
            } else if (c == '"' || c == '\'') {
                quote = c;
                word.append(c);
            } else if (Character.isWhitespace(c)) {
                if (!word.isEmpty()) {
                    out.add(word.toString());
                    word.setLength(0);
                }
            } else {
                word.append(c);
            }
        }
        if (!word.isEmpty()) {
            out.add(word.toString());
        }
        return out;
    }

    private synchronized List<String> process(String text, boolean split) {
        s = text;
        pos = 0;
        List<String> out = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        boolean inWord = false;
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (split && Character.isWhitespace(c)) {
                if (inWord) {
                    out.add(word.toString());
                    word.setLength(0);
                    inWord = false;
                }
                pos++;
                continue;
            }
            inWord = true;
            if (quoted(c, word)) {
                continue;
            }
            if (c == '$') {
                String value = variable();
                if (!split) {
                    word.append(value);
                    continue;
                }
                for (char v : value.toCharArray()) { // an unquoted expansion splits into words, as in a shell
                    if (Character.isWhitespace(v)) {
                        if (!word.isEmpty()) {
                            out.add(word.toString());
                            word.setLength(0);
                        }
                    } else {
                        word.append(v);
                    }
                }
                inWord = !word.isEmpty();
            } else {
                word.append(c);
                pos++;
            }
        }
        if (inWord || !split) {
            out.add(word.toString());
        }
        return out;
    }

    private void doubleQuoted(StringBuilder word) {
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c == '"') {
                pos++;
                return;
            }
            if (c == escape && pos + 1 < s.length() && "\"$".indexOf(s.charAt(pos + 1)) >= 0
                    || c == escape && pos + 1 < s.length() && s.charAt(pos + 1) == escape) {
                word.append(s.charAt(pos + 1));
                pos += 2;
            } else if (c == '$') {
                word.append(variable());
            } else {
                word.append(c);
                pos++;
            }
        }
        throw KilnException.invalid("unexpected end of statement while looking for matching double-quote");
    }

    /** At a {@code $}: the expansion, or the {@code $} itself when no name follows. */
    private String variable() {
        pos++;
        if (pos >= s.length()) {
            return "$";
        }
        char c = s.charAt(pos);
        if (c == '{') {
            pos++;
            String name = name();
            if (name.isEmpty()) {
                throw KilnException.invalid("bad substitution: ${" + rest() + " (a variable name must follow ${)");
            }
            if (pos >= s.length()) {
                throw KilnException.invalid("missing '}' in ${" + name);
            }
            char op = s.charAt(pos);
            if (op == '}') {
                pos++;
                return valueOf(name, "");
            }
            boolean colon = op == ':';
            if (colon) {
                pos++;
                if (pos >= s.length()) {
                    throw KilnException.invalid("missing '}' in ${" + name);
                }
                op = s.charAt(pos);
            }
            if (op != '-' && op != '+' && op != '?') {
                throw KilnException.invalid("unsupported modifier (" + (colon ? ":" : "") + op + ") in substitution ${"
                        + name + (colon ? ":" : "") + op + "…}");
            }
            pos++;
            String word = nested();
            String value = lookup.apply(name);
            boolean set = colon ? value != null && !value.isEmpty() : value != null;
            return switch (op) {
                case '-' -> set ? value : word;
                case '+' -> set ? word : "";
                default -> {
                    if (!set) {
                        throw KilnException.invalid(name + ": " + (word.isEmpty() ? "is not allowed to be unset"
                                : word));
                    }
                    yield value;
                }
            };
        }
        String name = name();
        if (name.isEmpty()) {
            return "$";
        }
        return valueOf(name, "");
    }

    /** The word of a modifier, up to its closing brace, itself expanded (quotes inside are removed). */
    /** Appends the escaped character, '...' or "..." that starts with {@code c} at pos; false when none does. */
    private boolean quoted(char c, StringBuilder word) {
        if (c == escape) {
            pos++;
            if (pos < s.length()) {
                word.append(s.charAt(pos++));
            }
        } else if (c == '\'') {
            pos++;
            int end = s.indexOf('\'', pos);
            if (end < 0) {
                throw KilnException.invalid("unexpected end of statement while looking for matching single-quote");
            }
            word.append(s, pos, end);
            pos = end + 1;
        } else if (c == '"') {
            pos++;
            doubleQuoted(word);
        } else {
            return false;
        }
        return true;
    }

    private String nested() {
        StringBuilder word = new StringBuilder();
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c == '}') {
                pos++;
                return word.toString();
            }
            if (quoted(c, word)) {
                continue;
            }
            if (c == '$') {
                word.append(variable());
            } else {
                word.append(c);
                pos++;
            }
        }
        throw KilnException.invalid("missing '}' in substitution");
    }

    private String name() {
        int start = pos;
        while (pos < s.length() && (Character.isLetterOrDigit(s.charAt(pos)) || s.charAt(pos) == '_')) {
            pos++;
        }
        return s.substring(start, pos);
    }

    private String rest() {
        return s.substring(pos);
    }

    private String valueOf(String name, String unset) {
        String v = lookup.apply(name);
        return v == null ? unset : v;
    }
}
