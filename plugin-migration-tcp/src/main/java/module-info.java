/**
 * Plugin 'migration-tcp': the {@code tcp:HOST:PORT} migration transport. Contributes a
 * {@link io.modemu.migration.MigrationTransport}; the engine that drives it lives in the platform.
 */
module io.modemu.migration.tcp {
    requires io.modemu.platform;

    provides io.modemu.migration.MigrationTransport with io.modemu.migration.tcp.TcpTransport;
}
