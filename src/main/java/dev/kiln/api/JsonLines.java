package dev.kiln.api;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.OutputStream;

/**
 * A stream of JSON documents, one a line (Docker's progress, events and stats streams). Each message goes out whole,
 * its newline included, in one write and one flush: a response body's every write is a chunk of its own, and client
 * stream parsers have failed on a newline that arrived alone.
 */
public final class JsonLines {
    private JsonLines() {
    }

    public static void write(OutputStream out, ObjectMapper json, Object message) throws IOException {
        byte[] doc = json.writeValueAsBytes(message);
        byte[] line = java.util.Arrays.copyOf(doc, doc.length + 1);
        line[doc.length] = '\n';
        out.write(line);
        out.flush();
    }
}
