/** Plugin 'migration-rdma-sim': the rdma-sim: migration transport (being built; see its issue). */
module io.modemu.migration.rdmasim {
    requires io.modemu.platform;
}
