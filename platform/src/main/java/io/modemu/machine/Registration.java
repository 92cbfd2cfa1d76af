package io.modemu.machine;

/** Undoes a registration (a handler, a listener). Idempotent. */
@FunctionalInterface
public interface Registration extends AutoCloseable {
    @Override
    void close();
}
