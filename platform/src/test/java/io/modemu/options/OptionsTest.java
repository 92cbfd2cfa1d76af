package io.modemu.options;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class OptionsTest {
    @Test
    void parsesKeyValuesWithAnImpliedFirstKeyAndTheDoubleCommaEscape() {
        Options o = Options.parse("-device", "virtio-blk-device,drive=d0,serial=a,,b,iothread=io0", "driver");
        assertThat(o.string("driver")).isEqualTo("virtio-blk-device");
        assertThat(o.string("serial")).isEqualTo("a,b");
        assertThat(o.asMap()).containsKeys("drive", "iothread");
        assertThat(o.toString()).isEqualTo("driver=virtio-blk-device,drive=d0,serial=a,,b,iothread=io0");
    }

    @Test
    void malformedTextIsRejectedNamingTheOption() {
        assertThat(Options.parse("-drive", "file=x,,", null).string("file")).isEqualTo("x,");
        assertThatThrownBy(() -> Options.parse("-drive", "file=x,", null)).hasMessage("-drive: 'file=x,' ends with a comma");
        assertThatThrownBy(() -> Options.parse("-drive", "file=x,,,", null)).hasMessage("-drive: 'file=x,,,' ends with a comma");
        assertThatThrownBy(() -> Options.parse("-drive", "a=1,b", null)).hasMessage("-drive: 'b' has no value (expected key=value)");
        assertThatThrownBy(() -> Options.parse("-drive", "a=1,,b=2,a=3", null)).hasMessage("-drive: option 'a' given twice");
        assertThatThrownBy(() -> Options.parse("-drive", "=1", null)).hasMessage("-drive: empty option name in '=1'");
        assertThatThrownBy(() -> Options.parse("-drive", "x=1,,y=2,", null)).hasMessageContaining("ends with a comma");
    }

    @Test
    void typedGettersNameTheKeyInTheirErrors() {
        Options o = Options.parse("-device virtio-blk-device", "num-queues=lots,ro=maybe,size=1Q,lat=fast,mode=x", null);
        assertThatThrownBy(() -> o.integer("num-queues", 1, 1, 64)).hasMessage("-device virtio-blk-device: option 'num-queues' must be a number, not 'lots'");
        assertThatThrownBy(() -> o.bool("ro", false)).hasMessage("-device virtio-blk-device: option 'ro' must be on or off, not 'maybe'");
        assertThatThrownBy(() -> o.size("size", 0)).hasMessageContaining("option 'size': '1Q' is not a size");
        assertThatThrownBy(() -> o.durationNanos("lat", 0, 1)).hasMessageContaining("option 'lat' must be a duration");
        assertThatThrownBy(() -> o.choice("mode", "a", List.of("report", "stop"))).hasMessageContaining("must be one of report, stop, not 'x'");
        Options p = Options.parse("-x", "n=100", null);
        assertThatThrownBy(() -> p.integer("n", 1, 1, 64)).hasMessage("-x: option 'n' must be between 1 and 64, not 100");
    }

    @Test
    void anOptionNobodyReadIsAnError() {
        Options o = Options.parse("-drive", "file=a.img,fromat=raw", null);
        o.string("file");
        assertThatThrownBy(o::checkAllUsed).hasMessage("-drive: unknown option 'fromat'");
    }

    @Test
    void sizesFollowQemu() {
        assertThat(Sizes.parse("512", "s")).isEqualTo(512);
        assertThat(Sizes.parse("4k", "s")).isEqualTo(4096);
        assertThat(Sizes.parse("1.5G", "s")).isEqualTo(1536L << 20);
        assertThat(Sizes.parse("0x1000", "s")).isEqualTo(4096);
        assertThat(Sizes.parse("1024", 1 << 20, "-m")).isEqualTo(1L << 30);
        assertThatThrownBy(() -> Sizes.parse("-1", "-m")).hasMessageContaining("'-1' is not a size");
        assertThatThrownBy(() -> Sizes.parse("1GiB", "-m")).hasMessageContaining("not a size");
        assertThatThrownBy(() -> Sizes.parse("99999999E", "-m")).hasMessageContaining("too large");
        assertThatThrownBy(() -> Sizes.parse("0.3", "-m")).hasMessageContaining("not a whole number");
        assertThat(Sizes.human(1L << 30)).isEqualTo("1.0 GiB");
    }
}
