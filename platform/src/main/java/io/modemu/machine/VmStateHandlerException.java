package io.modemu.machine;

/** A VM change-state handler failed; the message names it. */
public final class VmStateHandlerException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String handlerName;

    public VmStateHandlerException(String handlerName, String action, Throwable cause) {
        super("VM state handler '" + handlerName + "' failed to " + action + ": " + describe(cause), cause);
        this.handlerName = handlerName;
    }

    static String describe(Throwable t) {
        return t.getMessage() != null ? t.getMessage() : t.getClass().getSimpleName();
    }

    public String handlerName() {
        return handlerName;
    }
}
