package dev.kiln.image.registry;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The challenges of a {@code WWW-Authenticate} header (RFC 7235): {@code Bearer realm="https://auth/token",
 * service="registry",scope="repository:a/b:pull"}. Parameter values may be quoted strings containing commas and
 * backslash escapes (scopes with several actions do), and one header may carry several challenges, so splitting on
 * commas is not enough.
 */
final class WwwAuthenticate {

    /** One challenge; the scheme and parameter names are lower-cased because both are case-insensitive. */
    record Challenge(String scheme, Map<String, String> params) {
        String param(String name) {
            return params.get(name);
        }
    }

    private final String s;
    private int pos;

    private WwwAuthenticate(String header) {
        this.s = header;
    }

    /** Every challenge in the given header values, in order; malformed trailing text is ignored. */
    static List<Challenge> parse(List<String> headerValues) {
        List<Challenge> out = new ArrayList<>();
        for (String value : headerValues) {
            out.addAll(new WwwAuthenticate(value).challenges());
        }
        return out;
    }

    /** The first challenge with the given scheme. */
    static Optional<Challenge> find(List<Challenge> challenges, String scheme) {
        return challenges.stream().filter(c -> c.scheme().equals(scheme)).findFirst();
    }

    private List<Challenge> challenges() {
        List<Challenge> out = new ArrayList<>();
        while (true) {
            skip(", \t");
            String scheme = token();
            if (scheme.isEmpty()) {
                return out;
            }
            Map<String, String> params = new LinkedHashMap<>();
            skip(" \t");
            token68OrParams(params);
            out.add(new Challenge(scheme.toLowerCase(Locale.ROOT), params));
        }
    }

    /** Reads {@code name=value} pairs until a token that is not followed by '=' starts the next challenge. */
    private void token68OrParams(Map<String, String> params) {
        while (true) {
            int start = pos;
            String name = token();
            if (name.isEmpty()) {
                token68(params);
                return;
            }
            skip(" \t");
            if (!peek('=')) {
                pos = start; // a new scheme
                return;
            }
            pos++;
            if (peek('=') || atEnd() || peek(',')) {
                // `abc==` — a token68 credential (rare in challenges), not a parameter
                pos = start;
                token68(params);
                return;
            }
            skip(" \t");
            String value = peek('"') ? quoted() : token();
            params.put(name.toLowerCase(Locale.ROOT), value);
            skip(" \t");
            if (!peek(',')) {
                return;
            }
            while (peek(',') || peek(' ') || peek('\t')) {
                pos++;
            }
        }
    }

    private void token68(Map<String, String> params) {
        int start = pos;
        while (!atEnd() && (isTokenChar(s.charAt(pos)) || s.charAt(pos) == '=' || s.charAt(pos) == '/')) {
            pos++;
        }
        if (pos > start) {
            params.put("", s.substring(start, pos));
        }
    }

    private String quoted() {
        StringBuilder b = new StringBuilder();
        pos++; // opening quote
        while (!atEnd()) {
            char c = s.charAt(pos++);
            if (c == '\\' && !atEnd()) {
                b.append(s.charAt(pos++));
            } else if (c == '"') {
                return b.toString();
            } else {
                b.append(c);
            }
        }
        return b.toString(); // unterminated: take what there is, as lenient clients do
    }

    private String token() {
        int start = pos;
        while (!atEnd() && isTokenChar(s.charAt(pos))) {
            pos++;
        }
        return s.substring(start, pos);
    }

    /** RFC 7230 tchar. */
    private static boolean isTokenChar(char c) {
        return c > 32 && c < 127 && "()<>@,;:\\\"/[]?={} \t".indexOf(c) < 0;
    }

    private void skip(String chars) {
        while (!atEnd() && chars.indexOf(s.charAt(pos)) >= 0) {
            pos++;
        }
    }

    private boolean peek(char c) {
        return !atEnd() && s.charAt(pos) == c;
    }

    private boolean atEnd() {
        return pos >= s.length();
    }
}
