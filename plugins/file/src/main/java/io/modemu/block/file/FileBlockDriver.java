package io.modemu.block.file;

import io.modemu.block.BlockDriver;
import io.modemu.block.BlockNode;
import io.modemu.options.ConfigurationException;
import io.modemu.options.Options;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Block driver {@code file} (alias {@code raw}): a raw disk image in a host file.
 *
 * <p>Options: {@code filename} (required), {@code read-only=on|off}, {@code aio=threads|inline}
 * ({@code threads}, the default, runs each request on a small worker pool so that a slow disk never
 * blocks the event loop; {@code inline} issues the system call on the loop itself, the fastest choice
 * for an image in the page cache).
 */
public final class FileBlockDriver implements BlockDriver {
    @Override
    public String name() {
        return "file";
    }

    @Override
    public List<String> aliases() {
        return List.of("raw");
    }

    @Override
    public String description() {
        return "raw disk images in host files (positional I/O straight into guest RAM)";
    }

    @Override
    public BlockNode open(Options options) {
        String filename = options.string("filename");
        boolean readOnly = options.bool("read-only", false);
        boolean inline = options.choice("aio", "threads", List.of("threads", "inline")).equals("inline");
        Path path = Path.of(filename);
        if (Files.isDirectory(path)) {
            throw new ConfigurationException(options.context() + ": '" + filename + "' is a directory, not a disk image");
        }
        FileChannel ch;
        try {
            ch = readOnly ? FileChannel.open(path, StandardOpenOption.READ)
                    : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        } catch (NoSuchFileException e) {
            throw new ConfigurationException(options.context() + ": cannot open '" + filename + "': no such file");
        } catch (AccessDeniedException e) {
            throw new ConfigurationException(options.context() + ": cannot open '" + filename + "': permission denied"
                    + (readOnly ? "" : " (for a read-only image, add readonly=on)"));
        } catch (IOException | SecurityException e) {
            throw new ConfigurationException(options.context() + ": cannot open '" + filename + "': " + e.getMessage());
        }
        try {
            long size = ch.size();
            return new FileBlockNode(path, ch, size, readOnly, inline);
        } catch (IOException e) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // already failing
            }
            throw new ConfigurationException(options.context() + ": cannot read the size of '" + filename + "': " + e.getMessage());
        }
    }
}
