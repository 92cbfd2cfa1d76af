package io.modemu.virtio;

/**
 * The guest broke the virtio protocol (a malformed ring, a descriptor outside guest RAM, a bad
 * queue size...). The device answers it by setting DEVICE_NEEDS_RESET, never by failing on the host;
 * the message says what the guest did wrong and where. No stack trace: it describes guest input,
 * not a host bug.
 */
public final class VirtioProtocolException extends Exception {
    private static final long serialVersionUID = 1L;

    public VirtioProtocolException(String message) {
        super(message, null, false, false);
    }
}
