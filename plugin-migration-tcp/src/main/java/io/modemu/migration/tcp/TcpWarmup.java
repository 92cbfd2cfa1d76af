package io.modemu.migration.tcp;

import io.modemu.migration.ChannelSettings;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationListener;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the transport once over loopback, on a background thread, when the plugin is loaded: listen,
 * connect, accept, a write and a read each way, close. The first use of the JDK's socket and
 * selector code costs milliseconds (class initialisation, native set-up, constant pool resolution),
 * which a migration's set-up would otherwise pay; on the reference machine connecting went from
 * 2–6 ms to well under one. Touches nothing but a loopback socket pair of its own.
 */
final class TcpWarmup {
    private static final Logger log = LoggerFactory.getLogger(TcpWarmup.class);
    private static final AtomicBoolean STARTED = new AtomicBoolean();

    private TcpWarmup() {
    }

    static void startOnce(TcpTransport transport) {
        if (STARTED.compareAndSet(false, true)) {
            Thread.ofPlatform().daemon().name("migration-tcp warm-up").priority(Thread.MIN_PRIORITY).start(() -> run(transport));
        }
    }

    private static void run(TcpTransport transport) {
        long t0 = System.nanoTime();
        try {
            roundTrip(transport);
            log.debug("migration-tcp: warmed up in {} us", (System.nanoTime() - t0) / 1000);
        } catch (IOException | RuntimeException e) {
            // only a lost head start (for example no loopback interface): the first migration pays instead
            log.debug("migration-tcp: warm-up stopped: {}", e.toString());
        }
    }

    /** One connection over loopback through the transport's own code, both directions. */
    static void roundTrip(TcpTransport transport) throws IOException {
        ChannelSettings settings = new ChannelSettings(Duration.ofSeconds(2), Duration.ofSeconds(2));
        try (MigrationListener listener = transport.listen("127.0.0.1:0", settings);
             MigrationChannel out = transport.connect(listener.address(), settings);
             MigrationChannel in = listener.accept(settings.ioTimeout())) {
            exchange(out, in, settings.ioTimeout());
            exchange(in, out, settings.ioTimeout());
        }
    }

    private static void exchange(MigrationChannel from, MigrationChannel to, Duration timeout) throws IOException {
        ByteBuffer direct = ByteBuffer.allocateDirect(64);
        from.write(ByteBuffer.wrap(new byte[16]), direct);
        ByteBuffer dst = ByteBuffer.allocateDirect(80);
        while (dst.hasRemaining()) {
            if (to.read(dst, timeout) < 0) {
                throw new IOException("the warm-up connection closed early");
            }
        }
    }
}
