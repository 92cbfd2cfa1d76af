/**
 * Plugin 'migration-rdma-sim': live migration over a simulated RDMA fabric.
 *
 * <p>{@code io.modemu.migration.rdmasim.verbs} is the fabric: a verbs-shaped API (protection domains,
 * memory regions, queue pairs, completion queues, an rdma_cm-like connection manager) simulated
 * between processes on one host through shared memory.
 */
module io.modemu.migration.rdmasim {
    requires io.modemu.platform;

    exports io.modemu.migration.rdmasim.verbs;
    exports io.modemu.migration.rdmasim;

    provides io.modemu.migration.MigrationTransport with io.modemu.migration.rdmasim.RdmaSimTransport;
}
