/** The modemu command: QEMU-style options, the QMP client, plugin management. */
module io.modemu.cli {
    requires io.modemu.platform;
    requires info.picocli;
    requires org.slf4j;
    requires com.fasterxml.jackson.databind;

    opens io.modemu.cli to info.picocli;
}
