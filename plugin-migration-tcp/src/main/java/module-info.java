/** Plugin 'migration-tcp': the tcp: migration transport (being built; see its issue). */
module io.modemu.migration.tcp {
    requires io.modemu.platform;
}
