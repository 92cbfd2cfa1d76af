package io.modemu.migration.tcp.testbed;

import io.modemu.migration.LiveMigration;
import io.modemu.migration.MigrationInfo;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * What the shared migration scenarios ({@link MigrationScenarios}, {@link TwoProcessScenarios}) need
 * to know about a transport: how its machines are built, which URIs to listen on and to migrate to,
 * where guest RAM must live, and how to break its link. One per test class; {@link #close()} removes
 * whatever it created.
 */
public interface TransportFixture extends AutoCloseable {
    /** The id of the plugin that contributes the transport (checked in the process tests). */
    String pluginId();

    /** Contributions for machines in this JVM: the stock parts ({@link BuiltIn}) and this transport, instrumented for its faults. */
    Contributions contributions();

    /** A destination for a machine built from {@code source}: the same command line, plus what the transport needs. */
    TestVm.Spec destination(TestVm.Spec source, String name);

    /** The URI a destination listens on (port 0: one is picked). */
    String listenUri();

    /** The URI a source migrates to in the default mode, given the URI the destination listens at. */
    String sourceUri(String destinationUri);

    /** The transport's modes (for example parallel streams, or registering all RAM up front); the first is the default. */
    List<String> modes();

    /** Sets {@code source} up for {@code mode}; returns the URI to migrate to. */
    String prepareSource(String mode, String destinationUri, LiveMigration source);

    /** Transport-specific checks of a migration that completed in {@code mode} from a source with {@code ramSize} bytes of RAM. */
    void checkCompleted(String mode, MigrationInfo info, long ramSize);

    /** A link to the destination at {@code destinationUri} with faults on demand; the source migrates to its {@link FaultyLink#uri()}. */
    FaultyLink faultyLink(String destinationUri) throws IOException;

    /** A destination that takes a source's connection attempt and never answers. */
    SilentPeer silentPeer() throws IOException;

    /** A peer that lets a source connect and then says nothing. */
    interface SilentPeer extends AutoCloseable {
        /** The URI a source migrates to. */
        String uri();

        /** Waits until a source's connection attempt reached this peer. */
        void awaitContact(Duration timeout) throws Exception;

        @Override
        void close();
    }

    /** The {@link MigrationLauncher} arguments of a destination process ({@code incoming=...}, and where its RAM lives), working in {@code dir}. */
    List<String> childDestination(Path dir);

    /** The URI a source process migrates to, given what the destination process listens at. */
    String childSourceUri(String destinationUri);

    @Override
    void close();
}
