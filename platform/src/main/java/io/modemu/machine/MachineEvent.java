package io.modemu.machine;

import java.util.Map;

/**
 * Something that happened to a machine, in QMP terms: {@code name} is the QMP event name
 * ({@code STOP}, {@code RESUME}, {@code BLOCK_IO_ERROR}, ...) and {@code data} its payload.
 *
 * @param timestampMicros wall-clock time of the event in microseconds since the epoch
 */
public record MachineEvent(String name, Map<String, Object> data, long timestampMicros) {
    public static MachineEvent of(String name, Map<String, Object> data) {
        java.time.Instant now = java.time.Instant.now();
        return new MachineEvent(name, Map.copyOf(data), now.getEpochSecond() * 1_000_000L + now.getNano() / 1_000);
    }
}
