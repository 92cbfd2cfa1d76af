package io.modemu.options;

/**
 * A configuration error a user can fix: a malformed option, an unknown driver, a missing file.
 *
 * <p>The message is one line that names the culprit and, where possible, the way out; it is meant
 * to be printed as it is.
 */
public class ConfigurationException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ConfigurationException(String message) {
        super(message);
    }

    public ConfigurationException(String message, Throwable cause) {
        super(message, cause);
    }
}
