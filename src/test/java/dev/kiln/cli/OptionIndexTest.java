package dev.kiln.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The option index the AOT training writes (bin/kiln hands it to the hot commands): read back, it must say what the
 * class files say for every hot command, its superclasses and mixins; a damaged or missing index must fall back to
 * the class files, never break the command line.
 */
class OptionIndexTest {

    @TempDir
    Path dir;

    @Test
    void readsBackWhatTheClassFilesSay() throws Exception {
        Path file = dir.resolve("kiln-options.idx");
        OptionIndex.write(hotClasses(), file);
        Map<String, String> index = OptionIndex.load(file.toString());
        assertThat(index).containsKeys(KilnCommand.class.getName(), PsCommand.class.getName(),
                CreateOptions.class.getName(), Subcommand.class.getName());
        for (String name : index.keySet()) {
            Class<?> c = Class.forName(name);
            assertThat(OptionIndex.annotations(c, index)).as(name).isEqualTo(OptionIndex.annotations(c, Map.of()));
        }
    }

    @Test
    void aDamagedOrMissingIndexFallsBackToTheClassFiles() throws Exception {
        Path file = dir.resolve("kiln-options.idx");
        Files.writeString(file, PsCommand.class.getName() + " {\"fields\": [\n" + KilnCommand.class.getName() + "\n");
        Map<String, String> damaged = OptionIndex.load(file.toString());
        assertThat(OptionIndex.annotations(PsCommand.class, damaged))
                .isEqualTo(OptionIndex.annotations(PsCommand.class, Map.of())).isNotNull();
        Map<String, String> misshapen = Map.of(PsCommand.class.getName(), "{\"fields\": [{\"field\": 5}]}");
        assertThat(OptionModel.of(new PsCommand(), Map.of()).complete()).isTrue();
        assertThat(OptionModel.of(new PsCommand(), misshapen).complete()).as("left to picocli").isFalse();
        assertThat(OptionIndex.load(dir.resolve("none").toString())).isEmpty();
        assertThat(OptionIndex.load(null)).isEmpty();
    }

    private static List<Class<?>> hotClasses() {
        List<Class<?>> classes = new ArrayList<>(List.of(KilnCommand.class));
        HotCommands.HOT.forEach(name -> classes.add(Commands.command(name).getClass()));
        return classes;
    }
}
