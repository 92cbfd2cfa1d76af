package io.modemu.bench;

/**
 * The reference of {@code startup}: a Java main that does nothing, started with the launcher's JVM
 * options; its start-to-exit time is what any Java program pays before its own work.
 */
public final class JvmExit {
    private JvmExit() {
    }

    public static void main(String[] args) {
        // nothing: the JVM starts, runs this and exits
    }
}
