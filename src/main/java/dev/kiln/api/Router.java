package dev.kiln.api;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Method + path template ({@code /v1/sandboxes/{id}/start}) → handler. Templates match one segment per name. */
public final class Router {

    @FunctionalInterface
    public interface Route {
        void handle(Exchange x) throws Exception;
    }

    record Match(Route route, Map<String, String> params) {
    }

    private record Entry(String method, Pattern pattern, List<String> names, Route route) {
    }

    private final List<Entry> entries = new ArrayList<>();

    public Router add(String method, String template, Route route) {
        List<String> names = new ArrayList<>();
        StringBuilder regex = new StringBuilder();
        Matcher m = Pattern.compile("\\{(\\w+)(\\*)?}").matcher(template);
        int last = 0;
        while (m.find()) {
            regex.append(Pattern.quote(template.substring(last, m.start())));
            names.add(m.group(1));
            regex.append(m.group(2) != null ? "(.+)" : "([^/]+)");
            last = m.end();
        }
        regex.append(Pattern.quote(template.substring(last)));
        entries.add(new Entry(method, Pattern.compile(regex.toString()), names, route));
        return this;
    }

    /** The route for a request; {@code null} with {@code methodMismatch[0]} set when only the method was wrong. */
    Match match(String method, String path, boolean[] methodMismatch) {
        for (Entry e : entries) {
            Matcher m = e.pattern.matcher(path);
            if (!m.matches()) {
                continue;
            }
            if (!e.method.equals(method) && !(e.method.equals("GET") && method.equals("HEAD"))) {
                methodMismatch[0] = true;
                continue;
            }
            Map<String, String> params = new HashMap<>();
            for (int i = 0; i < e.names.size(); i++) {
                params.put(e.names.get(i), java.net.URLDecoder.decode(m.group(i + 1),
                        java.nio.charset.StandardCharsets.UTF_8));
            }
            return new Match(e.route, params);
        }
        return null;
    }
}
