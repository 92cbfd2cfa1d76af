package io.modemu.cli;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Whether a series of resource samples (threads, file descriptors, heap after GC, one per cycle of a
 * soak) keeps growing, robustly against noise: the first quarter is dropped as warm-up; the rest must
 * show a monotonic upward trend (Mann-Kendall test, one-sided, p &lt; 0.01) <em>and</em> the median of
 * its last window must exceed the median of its first window by more than {@code tolerance}. One
 * outlier, a one-off step smaller than the tolerance, or noise around a level never fails it; a
 * steady climb does.
 */
record GrowthCheck(String what, List<Long> samples, long tolerance, boolean bytes) {
    GrowthCheck(String what, List<Long> samples, long tolerance) {
        this(what, samples, tolerance, false);
    }

    /** z of a one-sided p = 0.01 under the normal approximation. */
    static final double Z_99 = 2.326;
    /** Fewer samples after the warm-up than this and nothing can be concluded. */
    static final int MIN_SAMPLES = 6;

    /** The verdict. */
    record Verdict(String what, boolean enoughSamples, boolean growing, double z, long early, long late, double slopePerSample, int samples,
                   long tolerance, boolean bytes) {
        @Override
        public String toString() {
            if (!enoughSamples) {
                return what + ": only " + samples + " samples after the warm-up, at least " + MIN_SAMPLES + " are needed (run longer)";
            }
            return String.format(Locale.ROOT, "%s: %s (first window median %s, last %s, tolerance %s; Theil-Sen slope %s per sample, Mann-Kendall z %.2f over %d samples)",
                    what, growing ? "KEEPS GROWING" : "no growth", unit(early), unit(late), unit(tolerance), unit(slopePerSample), z, samples);
        }

        private String unit(double v) {
            return bytes ? String.format(Locale.ROOT, "%.2f MiB", v / 1048576) : String.format(Locale.ROOT, "%.2f", v);
        }
    }

    Verdict verdict() {
        List<Long> s = samples.subList(Math.max(1, samples.size() / 4), samples.size());
        int n = s.size();
        if (n < MIN_SAMPLES) {
            return new Verdict(what, false, false, 0, 0, 0, 0, n, tolerance, bytes);
        }
        int w = Math.max(3, n / 4);
        long early = median(s.subList(0, w));
        long late = median(s.subList(n - w, n));
        double z = mannKendallZ(s);
        double slope = theilSen(s);
        boolean growing = z > Z_99 && late - early > tolerance;
        return new Verdict(what, true, growing, z, early, late, slope, n, tolerance, bytes);
    }

    /** Mann-Kendall's S normalised (with the tie correction and the continuity correction): large and positive for an upward trend. */
    static double mannKendallZ(List<Long> x) {
        int n = x.size();
        long s = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                s += Long.signum(x.get(j) - x.get(i));
            }
        }
        double var = n * (n - 1.0) * (2 * n + 5);
        long[] sorted = x.stream().mapToLong(Long::longValue).sorted().toArray();
        for (int i = 0; i < n; ) {
            int j = i;
            while (j < n && sorted[j] == sorted[i]) {
                j++;
            }
            int t = j - i;
            var -= t * (t - 1.0) * (2 * t + 5);
            i = j;
        }
        var /= 18;
        if (var <= 0 || s == 0) {
            return 0;
        }
        return (s > 0 ? s - 1 : s + 1) / Math.sqrt(var);
    }

    /** The median of the slopes between every pair of samples. */
    static double theilSen(List<Long> x) {
        List<Double> slopes = new ArrayList<>();
        for (int i = 0; i < x.size(); i++) {
            for (int j = i + 1; j < x.size(); j++) {
                slopes.add((x.get(j) - x.get(i)) / (double) (j - i));
            }
        }
        if (slopes.isEmpty()) {
            return 0;
        }
        double[] a = slopes.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    static long median(List<Long> x) {
        long[] a = x.stream().mapToLong(Long::longValue).toArray();
        Arrays.sort(a);
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }
}
