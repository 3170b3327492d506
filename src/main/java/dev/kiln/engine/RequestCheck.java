package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.isolation.EtcValues;

import java.lang.reflect.RecordComponent;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * What a create or exec request may carry into a sandbox, checked once in the engine whichever face sent it (the
 * CLI, /v1, the Docker API), before anything is made: no string of it holds a NUL (no argv, environment, path or
 * file of Linux can), and every value written into the sandbox's /etc files is one token of its kind
 * ({@link EtcValues}: hostname, DNS servers, search domains and options, --add-host entries). The working
 * directory's rules are {@link dev.kiln.engine.process.ImageProcess}'s, which also checks the image's. Each refusal is
 * INVALID, one line naming the value.
 */
final class RequestCheck {
    private RequestCheck() {
    }

    static void create(SandboxConfig r) {
        noNul(r);
        if (r.hostname() != null) {
            EtcValues.hostname(r.hostname());
        }
        each(r.dns(), EtcValues::nameserver);
        each(r.dnsSearch(), EtcValues::searchDomain);
        each(r.dnsOptions(), EtcValues::dnsOption);
        each(r.extraHosts(), EtcValues::extraHost);
        if (r.autoRemove() && !Supervision.of(r).restart().none()) {
            throw KilnException.invalid("Conflicting options: --restart and --rm");
        }
    }

    static void exec(ExecConfig r) {
        noNul(r);
    }

    private static void each(List<String> values, java.util.function.Consumer<String> check) {
        if (values != null) {
            values.forEach(check);
        }
    }

    /** Every string of the record — fields, list elements, map keys and values — free of NUL and of null elements. */
    private static void noNul(Record request) {
        for (RecordComponent c : request.getClass().getRecordComponents()) {
            Object value;
            try {
                value = c.getAccessor().invoke(request);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("cannot read " + c.getName() + " of a request", e);
            }
            noNul(c.getName(), value);
        }
    }

    private static void noNul(String field, Object value) {
        switch (value) {
            case null -> { }
            case String s -> {
                if (s.indexOf('\0') >= 0) {
                    throw KilnException.invalid(field + " " + KilnException.quote(s) + " contains a NUL byte, which no "
                            + "argument, environment variable, path or name can hold");
                }
            }
            case Collection<?> list -> {
                for (Object element : list) {
                    if (element == null) {
                        throw KilnException.invalid(field + " holds a null element");
                    }
                    noNul(field, element);
                }
            }
            case Map<?, ?> map -> map.forEach((k, v) -> {
                noNul(field, k);
                noNul(field + "." + k, v);
            });
            default -> { }
        }
    }
}
