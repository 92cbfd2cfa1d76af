/**
 * The Modemu platform: the plugin-facing SPI (exported packages) and the machine core.
 *
 * <p>Exported packages are the contract with plugins and embedders; everything else stays internal.
 */
module io.modemu.platform {
    requires transitive org.slf4j;
    requires org.pf4j;
    requires com.google.guice;
    requires jakarta.inject;
    requires com.fasterxml.jackson.databind;

    exports io.modemu.aio;
    exports io.modemu.machine;
    exports io.modemu.block;
    exports io.modemu.device;
    exports io.modemu.migration;
    exports io.modemu.guest;
    exports io.modemu.options;
    exports io.modemu.plugin;
    exports io.modemu.platform;
    exports io.modemu.monitor;

    opens io.modemu.platform to com.google.guice;
    opens io.modemu.platform.internal to com.google.guice;

    uses io.modemu.device.DeviceType;
    uses io.modemu.block.BlockDriver;
    uses io.modemu.migration.MigrationTransport;
    uses io.modemu.guest.GuestProgram;
    uses io.modemu.monitor.MonitorCommand;
}
