package io.modemu.migration.rdmasim.verbs;

/**
 * A verb refused synchronously (where libibverbs returns an errno): the message names the object,
 * the value and the way out.
 */
public final class VerbsException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Why a verb was refused, with the errno libibverbs would return. */
    public enum Reason {
        /** EINVAL: a malformed argument. */
        INVALID_ARGUMENT,
        /** EINVAL: the object is not in a state that allows the verb. */
        INVALID_STATE,
        /** ENOMEM: the work queue is full. */
        QUEUE_FULL,
        /** ENOMEM: a device table (queue pairs, memory regions, shared files) is full. */
        NO_RESOURCES,
        /** EBUSY: the object is still in use (a protection domain with regions, a CQ with queue pairs). */
        BUSY,
        /** The completion queue overflowed; its queue pairs are in error. */
        CQ_OVERRUN,
        /** The device is closed. */
        CLOSED
    }

    private final Reason reason;

    public VerbsException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public VerbsException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
