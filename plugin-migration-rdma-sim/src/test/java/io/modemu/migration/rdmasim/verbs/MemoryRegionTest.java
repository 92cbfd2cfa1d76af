package io.modemu.migration.rdmasim.verbs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class MemoryRegionTest {
    @RegisterExtension
    final TestFabric fabric = new TestFabric();
    private final Arena arena = fabric.arena();
    private RdmaDevice device;
    private ProtectionDomain pd;

    @BeforeEach
    void setUp() {
        device = fabric.device(fabric.settings().withMaxMemoryRegions(8));
        pd = device.allocateProtectionDomain();
    }

    @Test
    void remoteWriteWithoutLocalWriteIsRefusedAsInVerbs() throws Exception {
        SharedMemory sm = device.allocateShared(4096);
        assertThatThrownBy(() -> pd.register(sm.segment(), Access.REMOTE_WRITE)).isInstanceOf(VerbsException.class)
                .hasMessageContaining("REMOTE_WRITE needs LOCAL_WRITE");
        assertThat(pd.register(sm.segment(), Access.REMOTE_READ).access()).containsExactly(Access.REMOTE_READ);
    }

    @Test
    void remoteAccessNeedsMemoryThePeerCanReach() {
        MemorySegment plain = arena.allocate(4096);
        assertThatThrownBy(() -> pd.register(plain, Access.LOCAL_WRITE, Access.REMOTE_WRITE)).isInstanceOf(VerbsException.class)
                .hasMessageContaining("lies in no memory the peer can reach").hasMessageContaining("allocateShared");
        assertThat(pd.register(plain, Access.LOCAL_WRITE).isRegistered()).as("local access is fine anywhere").isTrue();
    }

    @Test
    void heapAndEmptyMemoryAreRefused() {
        assertThatThrownBy(() -> pd.register(MemorySegment.ofArray(new byte[64]))).hasMessageContaining("only native memory");
        assertThatThrownBy(() -> pd.register(arena.allocate(64).asSlice(0, 0))).hasMessageContaining("empty region");
    }

    @Test
    void keysAreDistinctAndAReusedSlotGetsANewKey() {
        MemorySegment m = arena.allocate(4096);
        Set<Integer> keys = new HashSet<>();
        MemoryRegion first = pd.register(m);
        keys.add(first.lkey());
        for (int i = 0; i < 7; i++) {
            assertThat(keys.add(pd.register(m).lkey())).isTrue();
        }
        assertThatThrownBy(() -> pd.register(m)).isInstanceOf(VerbsException.class).hasMessageContaining("all 8 memory regions are in use")
                .extracting(e -> ((VerbsException) e).reason()).isEqualTo(VerbsException.Reason.NO_RESOURCES);
        first.deregister();
        MemoryRegion again = pd.register(m);
        assertThat(again.lkey() >>> 8).as("same slot").isEqualTo(first.lkey() >>> 8);
        assertThat(again.lkey()).as("new key").isNotEqualTo(first.lkey());
        assertThat(device.localRegion(first.lkey())).isNull();
        assertThat(device.localRegion(again.lkey())).isSameAs(again);
    }

    @Test
    void deregisteringTwiceIsAnError() {
        MemoryRegion mr = pd.register(arena.allocate(64));
        mr.deregister();
        assertThat(mr.isRegistered()).isFalse();
        assertThatThrownBy(mr::deregister).hasMessageContaining("already deregistered");
    }

    @Test
    void aDomainOrSharedMemoryStillInUseCannotBeReleased() throws Exception {
        SharedMemory sm = device.allocateShared(8192);
        MemoryRegion mr = pd.register(sm.segment().asSlice(4096, 4096), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        assertThatThrownBy(pd::close).hasMessageContaining("still holds 1 memory regions");
        assertThatThrownBy(sm::close).hasMessageContaining("still registered");
        mr.deregister();
        sm.close();
        assertThat(Files.exists(sm.file())).as("allocated shared memory is deleted when closed").isFalse();
        pd.close();
        assertThatThrownBy(() -> pd.register(arena.allocate(64))).hasMessageContaining("deallocated");
    }

    @Test
    void anAttachedFileMappingCanHoldRemotelyWritableRegions() throws Exception {
        Path ram = fabric.dir.resolve("guest-ram");
        try (FileChannel ch = FileChannel.open(ram, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.truncate(1 << 20);
            MemorySegment mapping = ch.map(FileChannel.MapMode.READ_WRITE, 0, 1 << 20, arena);
            SharedMemory sm = device.attachShared(ram, mapping);
            MemoryRegion mr = pd.register(mapping.asSlice(1 << 19, 1 << 19), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
            assertThat(mr.address()).isEqualTo(mapping.address() + (1 << 19));
            mr.deregister();
            sm.close();
            assertThat(Files.exists(ram)).as("an attached file stays the caller's").isTrue();
        }
    }

    @Test
    void attachingAFileShorterThanItsMappingIsRefused() throws Exception {
        Path f = fabric.dir.resolve("short");
        Files.write(f, new byte[100]);
        assertThatThrownBy(() -> device.attachShared(f, arena.allocate(4096))).hasMessageContaining("fewer than the 4096");
        assertThatThrownBy(() -> device.attachShared(fabric.dir.resolve("missing"), arena.allocate(4096))).hasMessageContaining("not a regular file");
    }

    @Test
    void deregistrationWaitsForALivePeersAccessButNotForADeadOnes() throws Exception {
        RdmaDevice d = fabric.device(fabric.settings().withDeregisterTimeout(java.time.Duration.ofMinutes(10)));
        ProtectionDomain p = d.allocateProtectionDomain();
        SharedMemory sm = d.allocateShared(4096);

        // a live peer in the middle of a write: deregistration waits for it
        MemoryRegion busy = p.register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        p.peerPids.add(ProcessHandle.current().pid());
        d.table().enter(busy.index());
        java.util.concurrent.CompletableFuture<Void> dereg = java.util.concurrent.CompletableFuture.runAsync(busy::deregister);
        while (d.table().readMr(busy.index()) != null) {
            Thread.sleep(1);
        }
        assertThat(dereg).as("invalidated, still waiting for the write").isNotDone();
        d.table().leave(busy.index());
        dereg.get(60, java.util.concurrent.TimeUnit.SECONDS);

        // a peer killed in the middle of a write never leaves: deregistration sees it is dead
        Process dead = new ProcessBuilder(java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-version")
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        assertThat(dead.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        ProtectionDomain q = d.allocateProtectionDomain();
        MemoryRegion stuck = q.register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        q.peerPids.add(dead.pid());
        d.table().enter(stuck.index());
        java.util.concurrent.CompletableFuture.runAsync(stuck::deregister).get(60, java.util.concurrent.TimeUnit.SECONDS);
        assertThat(stuck.isRegistered()).isFalse();
    }

    @Test
    void regionsDeregisteredTogetherAreAllGoneAndAForeignOneIsRefused() {
        MemorySegment m = arena.allocate(4096);
        java.util.List<MemoryRegion> mrs = java.util.List.of(pd.register(m), pd.register(m), pd.register(m));
        MemoryRegion foreign = device.allocateProtectionDomain().register(m);
        assertThatThrownBy(() -> pd.deregister(java.util.List.of(mrs.get(0), foreign))).hasMessageContaining("belongs to protection domain");
        assertThat(mrs.get(0).isRegistered()).as("nothing deregistered when refused").isTrue();
        pd.deregister(mrs);
        for (MemoryRegion mr : mrs) {
            assertThat(mr.isRegistered()).isFalse();
            assertThat(device.localRegion(mr.lkey())).isNull();
        }
        assertThat(pd.regions).isEmpty();
        assertThatThrownBy(() -> pd.deregister(mrs)).hasMessageContaining("already deregistered");
        for (int i = 0; i < 7; i++) {
            pd.register(m); // the foreign region holds the eighth slot; the three freed ones are reused
        }
        assertThatThrownBy(() -> pd.register(m)).hasMessageContaining("all 8");
    }
}
