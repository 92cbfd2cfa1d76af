package io.modemu.monitor;

import java.io.IOException;
import java.io.Reader;

/**
 * Splits a QMP input stream into top-level JSON texts, so that a malformed one can be answered with
 * an error and the connection goes on (as QEMU's JSON streamer does). It only tracks nesting and
 * strings; the texts themselves are parsed by Jackson.
 */
final class JsonFramer {
    /** One framed input: either JSON text to parse, or garbage with the reason. */
    record Frame(String json, String error) {
    }

    static final int MAX_LENGTH = 16 << 20;
    static final int MAX_DEPTH = 1024;

    private final Reader in;
    private int pushedBack = -2;

    JsonFramer(Reader in) {
        this.in = in;
    }

    private int read() throws IOException {
        if (pushedBack != -2) {
            int c = pushedBack;
            pushedBack = -2;
            return c;
        }
        return in.read();
    }

    /** The next frame, or null at the end of the stream. */
    Frame next() throws IOException {
        int c;
        do {
            c = read();
            if (c < 0) {
                return null;
            }
        } while (Character.isWhitespace(c));
        if (c != '{' && c != '[') {
            StringBuilder junk = new StringBuilder();
            while (c >= 0 && !Character.isWhitespace(c) && c != '{' && c != '[' && junk.length() < 64) {
                junk.appendCodePoint(c);
                c = read();
            }
            if (c == '{' || c == '[') {
                pushedBack = c;
            }
            return new Frame(null, "JSON parse error, invalid keyword '" + junk + "'");
        }
        StringBuilder sb = new StringBuilder();
        int depth = 0;
        boolean inString = false;
        boolean escape = false;
        while (true) {
            if (c < 0) {
                return new Frame(null, "JSON parse error, unexpected end of input");
            }
            if (sb.length() >= MAX_LENGTH) {
                skipLine();
                return new Frame(null, "JSON parse error, input larger than " + MAX_LENGTH + " bytes");
            }
            sb.append((char) c);
            if (inString) {
                if (escape) {
                    escape = false;
                } else if (c == '\\') {
                    escape = true;
                } else if (c == '"') {
                    inString = false;
                }
            } else if (c == '"') {
                inString = true;
            } else if (c == '{' || c == '[') {
                if (++depth > MAX_DEPTH) {
                    skipLine();
                    return new Frame(null, "JSON parse error, nesting deeper than " + MAX_DEPTH);
                }
            } else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    return new Frame(sb.toString(), null);
                }
            }
            c = read();
        }
    }

    private void skipLine() throws IOException {
        int c;
        do {
            c = read();
        } while (c >= 0 && c != '\n');
    }
}
