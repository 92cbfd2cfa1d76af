package io.modemu.aio;

/** Thrown by {@link AioContext#assertInThread()} when code runs outside the context it must run in. */
public final class WrongThreadException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    public WrongThreadException(String message) {
        super(message);
    }
}
