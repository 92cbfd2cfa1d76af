package io.modemu.block;

/** errno-like codes carried by block request completions (negated, as QEMU does: {@code -EIO}). */
public final class Errno {
    public static final int OK = 0;
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int EIO = 5;
    public static final int EAGAIN = 11;
    public static final int ENOMEM = 12;
    public static final int EACCES = 13;
    public static final int EINVAL = 22;
    public static final int ENOSPC = 28;
    public static final int EROFS = 30;
    public static final int ENOTSUP = 95;
    public static final int ECANCELED = 125;
    public static final int ENOMEDIUM = 123;

    private Errno() {
    }

    /** The symbolic name of {@code code} (sign ignored), for example {@code EIO}. */
    public static String name(int code) {
        return switch (Math.abs(code)) {
            case OK -> "OK";
            case EPERM -> "EPERM";
            case ENOENT -> "ENOENT";
            case EIO -> "EIO";
            case EAGAIN -> "EAGAIN";
            case ENOMEM -> "ENOMEM";
            case EACCES -> "EACCES";
            case EINVAL -> "EINVAL";
            case ENOSPC -> "ENOSPC";
            case EROFS -> "EROFS";
            case ENOTSUP -> "ENOTSUP";
            case ECANCELED -> "ECANCELED";
            case ENOMEDIUM -> "ENOMEDIUM";
            default -> "errno " + Math.abs(code);
        };
    }
}
