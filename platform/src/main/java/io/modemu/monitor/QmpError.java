package io.modemu.monitor;

/**
 * A command failure as QMP reports it: {@code {"error": {"class": ..., "desc": ...}}}. The classes
 * are QEMU's: GenericError, CommandNotFound, DeviceNotActive, DeviceNotFound, KVMMissingCap.
 */
public final class QmpError extends RuntimeException {
    private static final long serialVersionUID = 1L;
    public static final String GENERIC_ERROR = "GenericError";
    public static final String COMMAND_NOT_FOUND = "CommandNotFound";
    public static final String DEVICE_NOT_FOUND = "DeviceNotFound";
    public static final String DEVICE_NOT_ACTIVE = "DeviceNotActive";

    private final String errorClass;

    public QmpError(String errorClass, String desc) {
        super(desc);
        this.errorClass = errorClass;
    }

    public static QmpError generic(String desc) {
        return new QmpError(GENERIC_ERROR, desc);
    }

    public String errorClass() {
        return errorClass;
    }

    public String desc() {
        return getMessage();
    }
}
