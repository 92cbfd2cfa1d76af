package io.modemu.migration.rdmasim.verbs;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class MappedPagesTest {
    @Test
    void marksRangesAcrossWordAndLeafBoundariesExactly() {
        PeerMemory.MappedPages m = new PeerMemory.MappedPages();
        assertThat(m.all(0, 0)).isFalse();
        // a range starting mid-word, covering whole words and ending mid-word, across a 1 GiB leaf boundary
        long leaf = 1L << 18; // pages per leaf
        m.mark(leaf - 70, leaf + 130);
        assertThat(m.all(leaf - 70, leaf + 130)).isTrue();
        assertThat(m.all(leaf - 71, leaf + 130)).isFalse();
        assertThat(m.all(leaf - 70, leaf + 131)).isFalse();
        assertThat(m.all(leaf, leaf + 63)).isTrue();
        assertThat(m.all(leaf - 1, leaf - 1)).isTrue();
        assertThat(m.leafCount()).isEqualTo(2);
        m.mark(5, 5);
        assertThat(m.all(5, 5)).isTrue();
        assertThat(m.all(4, 5)).isFalse();
        assertThat(m.all(5, 6)).isFalse();
    }

    @Test
    void memoryFollowsThePagesMarkedNotTheFilesClaimedSize() {
        PeerMemory.MappedPages m = new PeerMemory.MappedPages();
        // a page 512 TiB into a file a lying peer claims to be that large
        long far = (512L << 40) >>> 12;
        m.mark(far, far + 255);
        assertThat(m.all(far, far + 255)).isTrue();
        assertThat(m.all(0, 0)).isFalse();
        assertThat(m.leafCount()).isEqualTo(1);
    }
}
