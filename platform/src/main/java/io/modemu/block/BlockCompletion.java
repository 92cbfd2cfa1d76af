package io.modemu.block;

/** Completion of one block request: {@code status} is 0 on success or a negative {@link Errno} code. */
@FunctionalInterface
public interface BlockCompletion {
    void complete(int status);
}
