package io.modemu.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.IntToLongFunction;
import org.junit.jupiter.api.Test;

/** The soak's leak verdict: it must catch a steady climb and must not cry wolf at noise, warm-up or one outlier. */
class GrowthCheckTest {
    private static List<Long> series(int n, IntToLongFunction f) {
        List<Long> s = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            s.add(f.applyAsLong(i));
        }
        return s;
    }

    @Test
    void noiseAroundALevelIsNoGrowth() {
        Random r = new Random(1);
        GrowthCheck.Verdict v = new GrowthCheck("threads", series(40, i -> 60 + r.nextInt(7) - 3), 3).verdict();
        assertThat(v.enoughSamples()).isTrue();
        assertThat(v.growing()).as(v.toString()).isFalse();
    }

    @Test
    void oneThreadMorePerCycleKeepsGrowing() {
        Random r = new Random(2);
        GrowthCheck.Verdict v = new GrowthCheck("threads", series(20, i -> 60 + i + r.nextInt(5) - 2), 3).verdict();
        assertThat(v.growing()).as(v.toString()).isTrue();
        assertThat(v.slopePerSample()).isBetween(0.5, 1.5);
        assertThat(v.toString()).contains("KEEPS GROWING");
    }

    @Test
    void aSlowHeapLeakAboveTheToleranceIsCaughtThroughTheNoise() {
        Random r = new Random(3);
        // 100 KiB a cycle, +-300 KiB of noise, 2 MiB tolerance, 40 cycles
        GrowthCheck.Verdict v = new GrowthCheck("heap", series(40, i -> (30L << 20) + i * 100L * 1024 + r.nextInt(600 << 10) - (300 << 10)), 2 << 20).verdict();
        assertThat(v.growing()).as(v.toString()).isTrue();
    }

    @Test
    void aOneOffStepBelowTheToleranceIsNoGrowth() {
        GrowthCheck.Verdict v = new GrowthCheck("fds", series(30, i -> i < 15 ? 40 : 42), 4).verdict();
        assertThat(v.z()).as("the step is a significant trend").isGreaterThan(GrowthCheck.Z_99);
        assertThat(v.growing()).as(v.toString()).isFalse();
    }

    @Test
    void warmUpInTheFirstQuarterAndOneLateOutlierAreNoGrowth() {
        GrowthCheck.Verdict v = new GrowthCheck("threads", series(24, i -> i < 6 ? 40 + 3L * i : i == 23 ? 90 : 60 + (i % 2)), 3).verdict();
        assertThat(v.growing()).as(v.toString()).isFalse();
    }

    @Test
    void tooFewSamplesCannotBeJudged() {
        GrowthCheck.Verdict v = new GrowthCheck("fds", series(5, i -> 40 + i * 10L), 4).verdict();
        assertThat(v.enoughSamples()).isFalse();
        assertThat(v.toString()).contains("run longer");
    }
}
