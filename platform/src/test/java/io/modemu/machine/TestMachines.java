package io.modemu.machine;

import io.modemu.aio.LoopDriver;
import io.modemu.block.MemoryBlockNode;
import io.modemu.plugin.Contributions;

/** Machines for platform tests: a memory block driver named {@code mem} that hands out a given node. */
final class TestMachines {
    private TestMachines() {
    }

    static Machine machine(LoopDriver driver, MemoryBlockNode node, int vcpus) {
        return Machine.builder().loopDriver(driver).ram(1 << 20).iothread("io0").vcpus(vcpus)
                .contributions(Contributions.builder().add(node.driver("mem")).build()).build();
    }
}
