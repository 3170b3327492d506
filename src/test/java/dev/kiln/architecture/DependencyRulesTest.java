package dev.kiln.architecture;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

/**
 * Keeps DESIGN.md §6's one-way dependencies on the compiled classes (so a fully qualified name or a same-package
 * use counts as much as an import line): cli → (HTTP) → api → engine → {isolation, network, rootfs, image, state}.
 * The CLI talks to kilnd only through the wire records of {@code api.v1}; the engine and the API see an isolation
 * only through {@code dev.kiln.isolation}'s interface, never a shim, an OCI bundle or a VMM.
 */
class DependencyRulesTest {

    private static final JavaClasses KILN = new ClassFileImporter()
            .withImportOption(new ImportOption.DoNotIncludeTests())
            .importPackages("dev.kiln");

    /**
     * The CLI's kiln packages: its own, the wire records, the daemon's entry point ({@code api.daemon}: {@code kiln
     * daemon} runs kilnd in the same binary), TLS set-up, and {@code rootfs}: {@code kiln cp} reads and writes tar streams on the client's
     * side with the same guarded code kilnd uses; {@code dockerfile}: {@code kiln build} leaves out what .dockerignore
     * excludes before sending the context, with the same pattern rules kilnd applies.
     */
    @Test
    void theCliUsesOnlyTheWireRecordsOfTheApi() {
        check(noClasses().that().resideInAPackage("dev.kiln.cli..")
                .should().dependOnClassesThat(com.tngtech.archunit.base.DescribedPredicate.describe(
                        "are kiln classes outside cli, api.v1, api.daemon, tls and rootfs",
                        c -> c.getPackageName().startsWith("dev.kiln.")
                                && !inAny(c.getPackageName(), "dev.kiln.cli", "dev.kiln.api.v1", "dev.kiln.api.daemon",
                                        "dev.kiln.tls", "dev.kiln.rootfs", "dev.kiln.dockerfile"))));
    }

    @Test
    void nothingUsesTheCli() {
        check(noClasses().that().resideOutsideOfPackage("dev.kiln.cli..")
                .should().dependOnClassesThat().resideInAPackage("dev.kiln.cli.."));
    }

    /** The engine and the API drive every isolation through its interface; how it is done stays inside it. */
    @Test
    void engineAndApiSeeOnlyTheIsolationInterface() {
        check(noClasses().that().resideInAnyPackage("dev.kiln.engine..", "dev.kiln.api..")
                .should().dependOnClassesThat().resideInAnyPackage("dev.kiln.isolation.oci..",
                        "dev.kiln.isolation.vm..", "dev.kiln.isolation.shim.."));
    }

    /**
     * The engine has its own model of a sandbox; the API translates its wire records into it. {@code audit} works on
     * the engine's level (it runs sandboxes through it) and is served by the API, so the same holds for it.
     */
    @Test
    void theEngineDoesNotKnowTheApi() {
        check(noClasses().that().resideInAnyPackage("dev.kiln.engine..", "dev.kiln.audit..")
                .should().dependOnClassesThat().resideInAnyPackage("dev.kiln.api..", "dev.kiln.cli.."));
    }

    /** The libraries below the engine know nothing above them, nor each other where DESIGN.md says so. */
    @Test
    void librariesBelowTheEngineDependDownwards() {
        forbid("dev.kiln.isolation..", "dev.kiln.engine..", "dev.kiln.api..", "dev.kiln.image..", "dev.kiln.state..");
        forbid("dev.kiln.rootfs..", "dev.kiln.engine..", "dev.kiln.api..", "dev.kiln.isolation..", "dev.kiln.state..");
        forbid("dev.kiln.image..", "dev.kiln.engine..", "dev.kiln.api..", "dev.kiln.isolation..", "dev.kiln.rootfs..");
        forbid("dev.kiln.state..", "dev.kiln.engine..", "dev.kiln.api..", "dev.kiln.isolation..", "dev.kiln.rootfs..",
                "dev.kiln.image..");
        forbid("dev.kiln.network..", "dev.kiln.engine..", "dev.kiln.api..", "dev.kiln.isolation..",
                "dev.kiln.rootfs..", "dev.kiln.image..", "dev.kiln.state..");
        forbid("dev.kiln.tls..", "dev.kiln.engine..", "dev.kiln.api..", "dev.kiln.isolation..", "dev.kiln.rootfs..",
                "dev.kiln.image..", "dev.kiln.state..", "dev.kiln.network..");
    }

    /** Every package is its own slice: no two packages may need each other, directly or around a circle. */
    @Test
    void noPackageCycles() {
        check(slices().matching("dev.kiln.(**)").should().beFreeOfCycles());
    }

    private static void forbid(String pkg, String... below) {
        check(noClasses().that().resideInAPackage(pkg).should().dependOnClassesThat().resideInAnyPackage(below));
    }

    private static void check(ArchRule rule) {
        rule.check(KILN);
    }

    private static boolean inAny(String pkg, String... roots) {
        for (String r : roots) {
            if (pkg.equals(r) || pkg.startsWith(r + ".")) return true;
        }
        return false;
    }
}
