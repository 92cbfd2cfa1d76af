package io.modemu.machine;

import io.modemu.aio.LoopDriver;
import io.modemu.block.BlockDriver;
import io.modemu.block.BlockNode;
import io.modemu.block.MemoryBlockNode;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;

/** Machines for platform tests: a memory block driver named {@code mem} that hands out a given node. */
final class TestMachines {
    private TestMachines() {
    }

    static BlockDriver memDriver(MemoryBlockNode node) {
        return new BlockDriver() {
            @Override
            public String name() {
                return "mem";
            }

            @Override
            public String description() {
                return "test memory disk";
            }

            @Override
            public BlockNode open(Options options) {
                options.bool("read-only", false);
                return node;
            }
        };
    }

    static Machine machine(LoopDriver driver, MemoryBlockNode node, int vcpus) {
        return Machine.builder().loopDriver(driver).ram(1 << 20).iothread("io0").vcpus(vcpus)
                .contributions(Contributions.builder().add(memDriver(node)).build()).build();
    }
}
