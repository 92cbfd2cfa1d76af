package io.modemu.guest.virtio;

/** A guest-side driver cannot go on: the device refused something, or the driver's state in RAM is not there. */
public final class GuestDriverException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public GuestDriverException(String message) {
        super(message);
    }
}
