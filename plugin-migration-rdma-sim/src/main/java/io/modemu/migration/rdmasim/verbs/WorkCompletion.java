package io.modemu.migration.rdmasim.verbs;

/**
 * A completion ({@code ibv_wc}).
 *
 * <p>For an error status, {@link #opcode()} is the opcode of the work request as posted and
 * {@link #detail()} names the culprit (in verbs this is the opaque {@code vendor_err}); for
 * {@link WcStatus#SUCCESS} it is empty.
 *
 * @param wrId         the work request's id, as posted
 * @param status       the completion status
 * @param opcode       what completed
 * @param qpNumber     the local queue pair
 * @param byteLength   for receives, the number of bytes received (for RDMA WRITE with immediate,
 *                     the length of the write); otherwise the length of the request
 * @param hasImmediate whether {@code immediate} carries the sender's immediate data
 * @param immediate    the immediate data ({@code imm_data}) when {@code hasImmediate}
 * @param detail       for an error, what failed and why
 */
public record WorkCompletion(long wrId, WcStatus status, WcOpcode opcode, int qpNumber, long byteLength,
                             boolean hasImmediate, int immediate, String detail) {

    public boolean isSuccess() {
        return status == WcStatus.SUCCESS;
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("WC[wr_id=").append(wrId).append(' ').append(status).append(' ').append(opcode)
                .append(" qp=0x").append(Integer.toHexString(qpNumber)).append(" len=").append(byteLength);
        if (hasImmediate) {
            b.append(" imm=0x").append(Integer.toHexString(immediate));
        }
        if (!detail.isEmpty()) {
            b.append(": ").append(detail);
        }
        return b.append(']').toString();
    }
}
