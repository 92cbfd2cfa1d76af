package io.modemu.virtio.blk;

import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.machine.Machine;
import io.modemu.virtio.Virtio;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The virtio-blk fuzz target's properties ({@link VirtioBlkFuzzing}) over generated guest programs, a
 * bounded number of tries each ({@code -Dfuzz.tries=N}, default in the POM): a well-formed program cut
 * anywhere and followed by random operations with plausible fields (descriptors with edge lengths,
 * flags and next indices, headers of every request type with edge sectors, register writes, pushes
 * of any head, notifications of any queue, VM stops, disk errors, new bring-ups), and random bytes.
 */
class VirtioBlkPropertiesTest {
    private static final List<byte[]> SEEDS = new ArrayList<>(VirtioBlkSeeds.all().values());
    private static final long BASE = Machine.RAM_BASE;
    private static final long RAM_END = BASE + VirtioBlkFuzzing.RAM;

    @Property
    void aWellFormedProgramThenRandomOperationsNeverHarmsTheHost(@ForAll("programs") byte[] program) {
        VirtioBlkFuzzing.run(program);
    }

    @Property
    void randomBytesAsAProgramNeverHarmTheHost(@ForAll("randomPrograms") byte[] program) {
        VirtioBlkFuzzing.run(program);
    }

    @Provide
    Arbitrary<byte[]> randomPrograms() {
        return Arbitraries.bytes().array(byte[].class).ofMaxSize(600);
    }

    @Provide
    Arbitrary<byte[]> programs() {
        Arbitrary<byte[]> prefix = Combinators.combine(Arbitraries.integers().between(0, SEEDS.size() - 1), Arbitraries.integers().between(0, 100),
                Arbitraries.bytes().array(byte[].class).ofSize(3)).as((i, percent, config) -> {
                    byte[] s = SEEDS.get(i).clone();
                    if (percent < 30) {
                        System.arraycopy(config, 0, s, 0, 3); // another device configuration and scheduler seed
                    }
                    int cut = 3 + (int) ((s.length - 3) * Math.min(100, percent * 2L) / 100);
                    return java.util.Arrays.copyOf(s, cut);
                });
        return Combinators.combine(prefix, operation().list().ofMaxSize(24)).as((p, ops) -> {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.writeBytes(p);
            ops.forEach(out::writeBytes);
            return out.toByteArray();
        });
    }

    private static Arbitrary<Long> bufferAddress() {
        return Arbitraries.oneOf(Arbitraries.longs().between(0, 0x4000).map(o -> BASE + VirtioBlkFuzzing.B + o),
                Arbitraries.of(0L, 0x1000L, BASE - 16, RAM_END - 1, RAM_END - 8, RAM_END, RAM_END + 0x1000, -1L, Long.MIN_VALUE, 0x1_0000_0000L + BASE),
                Arbitraries.longs(), Arbitraries.longs().between(BASE, RAM_END - 1), Arbitraries.longs().between(0, 0x1000).map(o -> BASE + o * 16));
    }

    private static Arbitrary<Long> lengths() {
        return Arbitraries.oneOf(Arbitraries.of(0L, 1L, 15L, 16L, 17L, 32L, 48L, 511L, 512L, 4096L, 1L << 20, (1L << 20) + 1, 0x7fff_ffffL, 0xffff_ffffL),
                Arbitraries.longs().between(0, 0xffff_ffffL));
    }

    private static Arbitrary<Integer> small() {
        return Arbitraries.oneOf(Arbitraries.integers().between(0, 20), Arbitraries.integers().between(250, 260), Arbitraries.integers().between(0, 0xffff));
    }

    private static Arbitrary<byte[]> operation() {
        Arbitrary<byte[]> descriptor = Combinators.combine(small(), bufferAddress(), lengths(),
                Arbitraries.oneOf(Arbitraries.integers().between(0, 7), Arbitraries.integers().between(0, 0xffff)), small())
                .as((slot, addr, len, flags, next) -> new GuestProgram.Writer().descriptor(slot, addr, len, flags, next).toBytes());
        Arbitrary<byte[]> header = Combinators.combine(Arbitraries.integers().between(0, 20).map(i -> i * 0x100L),
                Arbitraries.oneOf(Arbitraries.of(VirtioBlkGuest.T_IN, VirtioBlkGuest.T_OUT, VirtioBlkGuest.T_FLUSH, 5, VirtioBlkGuest.T_GET_ID,
                        VirtioBlkGuest.T_DISCARD, VirtioBlkGuest.T_WRITE_ZEROES, 2, 10, 14, 0x8000_0000, 0x8000_0001), Arbitraries.integers()),
                Arbitraries.oneOf(Arbitraries.of(0L, 1L, 7L, 8L, 2047L, 2048L, 2049L, 1L << 40, Long.MAX_VALUE, -1L, -8L), Arbitraries.longs()),
                Arbitraries.oneOf(Arbitraries.of(0L, 1L, 8L, 2048L, 0xffff_ffffL), Arbitraries.longs().between(0, 0xffff_ffffL)),
                Arbitraries.of(0L, 1L, 2L, 0xffff_ffffL))
                .as((off, type, sector, count, flags) -> new GuestProgram.Writer().header(off, type, sector, sector, count, flags).toBytes());
        Arbitrary<byte[]> push = Combinators.combine(Arbitraries.integers().between(0, 2), small())
                .as((q, head) -> new GuestProgram.Writer().push(q, head).toBytes());
        Arbitrary<byte[]> notify = Arbitraries.oneOf(Arbitraries.integers().between(0, 2), Arbitraries.integers().between(0, 255))
                .map(q -> new GuestProgram.Writer().notifyQueue(q).run(20).toBytes());
        Integer[] registers = {Virtio.R_STATUS, Virtio.R_QUEUE_SEL, Virtio.R_QUEUE_NUM, Virtio.R_QUEUE_READY, Virtio.R_QUEUE_NOTIFY, Virtio.R_INTERRUPT_ACK,
                Virtio.R_DRIVER_FEATURES, Virtio.R_DRIVER_FEATURES_SEL, Virtio.R_DEVICE_FEATURES_SEL, Virtio.R_QUEUE_DESC_LOW, Virtio.R_QUEUE_DESC_HIGH,
                Virtio.R_QUEUE_DRIVER_LOW, Virtio.R_QUEUE_DEVICE_LOW, Virtio.R_QUEUE_RESET, Virtio.R_SHM_SEL, Virtio.R_CONFIG, Virtio.R_CONFIG + 34, 0x1ff, 0x3};
        Arbitrary<byte[]> register = Combinators.combine(Arbitraries.of(registers), Arbitraries.of(0, 0, 0, 1, 2, 3),
                Arbitraries.oneOf(Arbitraries.of(0L, 1L, 2L, 3L, 4L, 7L, 8L, 11L, 15L, 0x40L, 0x80L, 16L, 1024L, 2048L, 0xffff_ffffL, BASE, RAM_END - 4),
                        Arbitraries.longs()))
                .as((reg, size, value) -> new GuestProgram.Writer().mmioWrite(reg, size, value).toBytes());
        Arbitrary<byte[]> availWord = Combinators.combine(Arbitraries.integers().between(0, 40), Arbitraries.integers().between(0, 0xffff))
                .as((off, v) -> new GuestProgram.Writer().u8(GuestProgram.AVAIL_WORD).u16(off).u16(v).toBytes());
        Arbitrary<byte[]> bringUp = Combinators.combine(Arbitraries.oneOf(Arbitraries.of(VirtioBlkSeeds.FEATURES, VirtioBlkSeeds.FEATURES | 1L << 60,
                                VirtioBlkSeeds.FEATURES & ~(1L << Virtio.F_VERSION_1), 0L), Arbitraries.longs()),
                Arbitraries.of(0, 1, 3, 4, 16, 64, 100, 256, 1024, 2048, 65535), Arbitraries.of(0L, 8L, 0x100L, 0x1234L),
                Arbitraries.of(0L, 1L, 0x20L), bufferAddress())
                .as((f, size, d, a, u) -> new GuestProgram.Writer().bringUp(f, size, BASE + d, BASE + VirtioBlkFuzzing.A + a, u).toBytes());
        Arbitrary<byte[]> fault = Combinators.combine(Arbitraries.integers().between(0, 4), Arbitraries.integers().between(0, 3),
                Arbitraries.integers().between(0, 3)).as((k, e, n) -> new GuestProgram.Writer().u8(GuestProgram.DISK_FAULT).u8(k).u8(e).u8(n).toBytes());
        Arbitrary<byte[]> stopStart = Arbitraries.just(new GuestProgram.Writer().stopStart().toBytes());
        Arbitrary<byte[]> run = Arbitraries.integers().between(0, 255).map(n -> new GuestProgram.Writer().run(n).toBytes());
        return Arbitraries.frequencyOf(net.jqwik.api.Tuple.of(6, descriptor), net.jqwik.api.Tuple.of(3, header), net.jqwik.api.Tuple.of(4, push),
                net.jqwik.api.Tuple.of(4, notify), net.jqwik.api.Tuple.of(3, register), net.jqwik.api.Tuple.of(1, availWord),
                net.jqwik.api.Tuple.of(1, bringUp), net.jqwik.api.Tuple.of(1, fault), net.jqwik.api.Tuple.of(1, stopStart), net.jqwik.api.Tuple.of(2, run));
    }
}
