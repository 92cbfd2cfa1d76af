package io.modemu.machine;

import io.modemu.aio.AioContext;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The VM change-state handlers of one machine, ordered by priority (ties in registration order), and
 * the asynchronous walk over them. Stop runs them in descending priority (a bus stops after the
 * devices on it), start in ascending. Each handler runs on the main loop and the next one starts only
 * when its stage completed; the loop keeps serving events in between.
 */
final class VmStateChain {
    record Entry(String name, int priority, long seq, VmStateHandler handler) {
    }

    private static final Comparator<Entry> ASCENDING = Comparator.comparingInt(Entry::priority).thenComparingLong(Entry::seq);

    private final AioContext mainLoop;
    private final CopyOnWriteArrayList<Entry> entries = new CopyOnWriteArrayList<>();
    private final AtomicLong seq = new AtomicLong();

    VmStateChain(AioContext mainLoop) {
        this.mainLoop = mainLoop;
    }

    Registration add(String name, int priority, VmStateHandler handler) {
        Entry e = new Entry(name, priority, seq.getAndIncrement(), handler);
        entries.add(e);
        return () -> entries.remove(e);
    }

    /** Handlers in start order. */
    List<Entry> ascending() {
        List<Entry> l = new ArrayList<>(entries);
        l.sort(ASCENDING);
        return l;
    }

    /** Handlers in stop order: descending priority, ties in registration order. */
    List<Entry> descending() {
        List<Entry> l = new ArrayList<>(entries);
        l.sort(Comparator.comparingInt(Entry::priority).reversed().thenComparingLong(Entry::seq));
        return l;
    }

    /**
     * Runs {@code action} on each entry in turn, on the main loop. On the first failure it stops and
     * fails with a {@link VmStateHandlerException} naming the handler; {@code done} receives the
     * entries that completed, in the order they ran, so the caller can roll them back.
     */
    CompletableFuture<Void> walk(List<Entry> order, String actionName, java.util.function.Function<Entry, CompletionStage<Void>> action,
                                 List<Entry> done) {
        CompletableFuture<Void> result = new CompletableFuture<>();
        step(order, 0, actionName, action, done, result);
        return result;
    }

    private void step(List<Entry> order, int i, String actionName, java.util.function.Function<Entry, CompletionStage<Void>> action,
                      List<Entry> done, CompletableFuture<Void> result) {
        mainLoop.assertInThread();
        if (i == order.size()) {
            result.complete(null);
            return;
        }
        Entry e = order.get(i);
        CompletionStage<Void> stage;
        try {
            stage = action.apply(e);
            if (stage == null) {
                throw new IllegalStateException("returned null instead of a CompletionStage");
            }
        } catch (Throwable t) {
            result.completeExceptionally(new VmStateHandlerException(e.name(), actionName, t));
            return;
        }
        stage.whenComplete((v, t) -> mainLoop.runOrExecute(() -> {
            if (t != null) {
                Throwable cause = t instanceof java.util.concurrent.CompletionException && t.getCause() != null ? t.getCause() : t;
                result.completeExceptionally(new VmStateHandlerException(e.name(), actionName, cause));
            } else {
                done.add(e);
                step(order, i + 1, actionName, action, done, result);
            }
        }));
    }
}
