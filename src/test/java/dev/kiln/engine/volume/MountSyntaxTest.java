package dev.kiln.engine.volume;

import dev.kiln.KilnException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Docker's mount syntaxes and rules, without a host: what each flag means and what is refused, in one line. */
class MountSyntaxTest {

    @Test
    void volumeFlagForms() {
        MountSpec bind = MountSyntax.volume("/srv/site/../www:/data/:ro,Z,rshared");
        assertThat(bind.type()).isEqualTo("bind");
        assertThat(bind.source()).isEqualTo("/srv/www");
        assertThat(bind.target()).isEqualTo("/data");
        assertThat(bind.readOnly()).isTrue();
        assertThat(bind.propagation()).isEqualTo("rshared");
        assertThat(bind.createSource()).isTrue(); // -v makes a missing source
        assertThat(bind.mode()).isEqualTo("ro,Z,rshared");

        MountSpec named = MountSyntax.volume("cache:/var/cache:nocopy");
        assertThat(named.type()).isEqualTo("volume");
        assertThat(named.source()).isEqualTo("cache");
        assertThat(named.noCopy()).isTrue();
        assertThat(named.anonymous()).isFalse();

        MountSpec anonymous = MountSyntax.volume("/scratch");
        assertThat(anonymous.type()).isEqualTo("volume");
        assertThat(anonymous.source()).isNull();
        assertThat(anonymous.anonymous()).isTrue();
        assertThat(MountSyntax.volume("/a:/b:cached").readOnly()).isFalse(); // Docker for Mac's hint, ignored
    }

    @Test
    void mountFlagForms() {
        MountSpec bind = MountSyntax.mount("type=bind,src=/srv,dst=/srv,readonly,bind-propagation=rslave");
        assertThat(bind.createSource()).isFalse(); // --mount refuses a missing source
        assertThat(bind.readOnly()).isTrue();
        assertThat(bind.propagation()).isEqualTo("rslave");

        MountSpec volume = MountSyntax.mount("source=v1,target=/v,volume-label=team=web,volume-nocopy=true");
        assertThat(volume.type()).isEqualTo("volume"); // Docker's default type
        assertThat(volume.labels()).isEqualTo(Map.of("team", "web"));
        assertThat(volume.noCopy()).isTrue();

        MountSpec tmpfs = MountSyntax.mount("type=tmpfs,destination=/run,tmpfs-size=64m,tmpfs-mode=1777");
        assertThat(tmpfs.tmpfsOptions()).containsExactly("size=67108864", "mode=1777");
        assertThat(MountSyntax.tmpfs("/t", "size=10%,mode=0700,noexec").tmpfsOptions())
                .containsExactly("size=10%", "mode=0700", "noexec");
    }

    @Test
    void refusalsAreOneLineNamingTheValue() {
        refused(() -> MountSyntax.volume("relative/dir:/x"), "invalid volume name \"relative/dir\"");
        refused(() -> MountSyntax.volume("..:/x"), "invalid volume name");
        refused(() -> MountSyntax.volume("/a:/"), "cannot be replaced by a mount");
        refused(() -> MountSyntax.volume("/a:/proc/sys"), "/proc is the sandbox's own");
        refused(() -> MountSyntax.volume("/a:rel"), "must be an absolute path inside the sandbox");
        refused(() -> MountSyntax.volume("/a:/b:ro,rw"), "invalid mode \"rw\"");
        refused(() -> MountSyntax.volume("/a:/b:nocopy"), "invalid mode \"nocopy\""); // not for a bind
        refused(() -> MountSyntax.volume("a:b:c:d"), "invalid volume specification");
        refused(() -> MountSyntax.mount("type=bind,src=rel,dst=/x"), "must be an absolute path on kilnd's host");
        refused(() -> MountSyntax.mount("type=bind,dst=/x"), "has no source");
        refused(() -> MountSyntax.mount("type=nfs,dst=/x"), "invalid mount type");
        refused(() -> MountSyntax.mount("type=tmpfs,dst=/x,tmpfs-size=lots"), "invalid tmpfs-size");
        refused(() -> MountSyntax.mount("type=bind,src=/a,dst=/x,tmpfs-size=1m"), "tmpfs-size is for type=tmpfs");
        refused(() -> MountSyntax.mount("type=volume,dst=/x,volume-driver=nfs"), "local driver only");
        refused(() -> MountSyntax.mount("type=bind,src=/a,dst=/x,bogus=1"), "does not know the key \"bogus\"");
        refused(() -> MountSyntax.tmpfs("/t", "size=big"), "invalid tmpfs option \"size=big\"");
        refused(() -> MountSyntax.tmpfs("/t", "mode=999"), "invalid tmpfs option \"mode=999\"");
        refused(() -> MountSyntax.tmpfs("/t", "exotic"), "invalid tmpfs option \"exotic\"");
        refused(() -> MountSyntax.parse(List.of("/a:/x", "v:/x"), null, null, null, null), "duplicate mount point /x");
    }

    @Test
    void configVolumesAreAnonymousUnlessAMountCoversThem() {
        Mounts m = MountSyntax.parse(List.of("data:/data"), null, Map.of("/run", "size=1m"), null,
                List.of("/data", "/logs"));
        assertThat(m.list()).extracting(MountSpec::target).containsExactly("/data", "/run", "/logs");
        assertThat(m.from("volume")).singleElement().satisfies(v -> assertThat(v.anonymous()).isTrue());
    }

    private static void refused(org.assertj.core.api.ThrowableAssert.ThrowingCallable call, String message) {
        assertThatThrownBy(call).isInstanceOf(KilnException.class).hasMessageContaining(message)
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"))
                .satisfies(e -> assertThat(((KilnException) e).kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT));
    }
}
