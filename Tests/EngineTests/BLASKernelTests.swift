import XCTest
@testable import Engine

/// The OpenBLAS kernel choice on the CPUs this project runs on, from their real flag lines.
final class BLASKernelTests: XCTestCase {
    // Intel Xeon Platinum 8375C (Ice Lake server): AVX-512 without bf16. OpenBLAS 0.3.21
    // does not recognise it and runs generic kernels unless told SkylakeX.
    static let intelXeonIceLake = """
        fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht \
        syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid aperfmperf \
        tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes \
        xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch invpcid_single ssbd ibrs ibpb stibp \
        ibrs_enhanced fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap \
        avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves wbnoinvd ida \
        arat avx512vbmi pku ospke avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg tme \
        avx512_vpopcntdq rdpid md_clear flush_l1d arch_capabilities
        """

    // AMD EPYC 7763 (Zen 3): AVX2 and FMA, no AVX-512. SkylakeX dies here with SIGILL.
    static let amdEpycZen3 = """
        fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht \
        syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid extd_apicid \
        aperfmperf tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave \
        avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch topoext \
        invpcid_single ssbd ibrs ibpb stibp vmmcall fsgsbase bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap \
        clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr rdpru wbnoinvd arat npt nrip_save vaes \
        vpclmulqdq rdpid
        """

    // AMD EPYC (Zen 4, family 25 model 17), as a virtual machine reports it: AVX-512 with bf16.
    static let amdEpycZen4 = """
        fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht \
        syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid \
        extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt \
        tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a \
        misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid \
        avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt \
        xsavec xgetbv1 xsaves avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes \
        vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm
        """

    // Intel Core 2 Duo E8400 (Penryn): SSE up to 4.1, no AVX at all.
    static let intelCore2 = """
        fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse \
        sse2 ss ht tm pbe syscall nx lm constant_tsc arch_perfmon pebs bts rep_good nopl cpuid aperfmperf pni \
        dtes64 monitor ds_cpl vmx est tm2 ssse3 cx16 xtpr pdcm sse4_1 xsave lahf_lm pti tpr_shadow vnmi \
        flexpriority dtherm
        """

    // Intel Xeon E5-2670 (Sandy Bridge): AVX but neither AVX2 nor FMA.
    static let intelSandyBridge = """
        fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse \
        sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon pebs bts rep_good nopl \
        xtopology nonstop_tsc cpuid aperfmperf pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 cx16 \
        xtpr pdcm pcid dca sse4_1 sse4_2 x2apic popcnt tsc_deadline_timer aes xsave avx lahf_lm pti \
        tpr_shadow vnmi flexpriority ept vpid xsaveopt dtherm ida arat pln pts
        """

    static func cpu(_ vendor: String, _ flags: String) -> BLASKernel.CPU {
        BLASKernel.CPU(vendor: vendor, model: "", flags: Set(flags.split(separator: " ").map(String.init)))
    }

    func testIntelXeonWithAVX512WithoutBF16GetsSkylakeX() {
        XCTAssertEqual(BLASKernel.coreType(for: Self.cpu("GenuineIntel", Self.intelXeonIceLake)), "SkylakeX")
    }

    func testZen3GetsAnAVX2KernelAndNeverAnAVX512One() {
        let choice = BLASKernel.coreType(for: Self.cpu("AuthenticAMD", Self.amdEpycZen3))
        XCTAssertEqual(choice, "Zen")
        XCTAssertNotEqual(choice, "SkylakeX")
        XCTAssertNotEqual(choice, "Cooperlake")
        // The same flags on an Intel CPU name the kernel by its Intel name.
        XCTAssertEqual(BLASKernel.coreType(for: Self.cpu("GenuineIntel", Self.amdEpycZen3)), "Haswell")
    }

    func testZen4WithBF16GetsCooperlake() {
        XCTAssertEqual(BLASKernel.coreType(for: Self.cpu("AuthenticAMD", Self.amdEpycZen4)), "Cooperlake")
    }

    func testCPUsWithoutAVX2AndFMALeaveTheChoiceToOpenBLAS() {
        XCTAssertNil(BLASKernel.coreType(for: Self.cpu("GenuineIntel", Self.intelCore2)))
        XCTAssertNil(BLASKernel.coreType(for: Self.cpu("GenuineIntel", Self.intelSandyBridge)))
        XCTAssertNil(BLASKernel.coreType(for: Self.cpu("GenuineIntel", "")))
    }

    /// Whatever flags a CPU lacks, the choice never needs one of them: take random subsets
    /// of the Zen 4 line (which has every flag any kernel needs) and check each choice.
    func testChoiceNeverNeedsAFlagTheCPULacks() {
        let all = Self.amdEpycZen4.split(separator: " ").map(String.init)
        var generator = SeededGenerator(seed: 11)
        var seen = Set<String?>()
        for _ in 0..<2000 {
            // Keep each flag with a high probability, so that all four outcomes occur.
            let flags = Set(all.filter { _ in generator.nextUniform() < 0.9 })
            for vendor in ["AuthenticAMD", "GenuineIntel"] {
                let choice = BLASKernel.coreType(for: BLASKernel.CPU(vendor: vendor, model: "", flags: flags))
                seen.insert(choice)
                if let choice {
                    let needed = try! XCTUnwrap(BLASKernel.requiredFlags(of: choice))
                    XCTAssertTrue(needed.isSubset(of: flags), "\(choice) needs \(needed.subtracting(flags).sorted())")
                }
            }
        }
        XCTAssertEqual(seen, ["Cooperlake", "SkylakeX", "Zen", "Haswell", nil])
    }

    func testParsesTheFirstProcessorOfCPUInfo() throws {
        let text = """
            processor\t: 0
            vendor_id\t: AuthenticAMD
            cpu family\t: 25
            model\t\t: 17
            model name\t: AMD EPYC 9R14
            flags\t\t: fpu sse sse2 avx f16c avx2 fma bmi2

            processor\t: 1
            vendor_id\t: GenuineIntel
            model name\t: something else
            flags\t\t: fpu sse
            """
        let cpu = try XCTUnwrap(BLASKernel.parseCPUInfo(text))
        XCTAssertEqual(cpu.vendor, "AuthenticAMD")
        XCTAssertEqual(cpu.model, "AMD EPYC 9R14")
        XCTAssertEqual(cpu.flags, ["fpu", "sse", "sse2", "avx", "f16c", "avx2", "fma", "bmi2"])
        XCTAssertEqual(BLASKernel.coreType(for: cpu), "Zen")
        XCTAssertNil(BLASKernel.parseCPUInfo("processor : 0\nHardware : BCM2835\n"))
    }

    #if os(Linux) && arch(x86_64)
    func testReadsThisMachinesCPUAndTheLoadedKernel() throws {
        let cpu = try XCTUnwrap(BLASKernel.currentCPU())
        XCTAssertTrue(cpu.flags.contains("sse2"), "every x86_64 CPU has SSE2")
        XCTAssertFalse(cpu.vendor.isEmpty)
        if let choice = BLASKernel.coreType(for: cpu) {
            XCTAssertTrue(BLASKernel.requiredFlags(of: choice)!.isSubset(of: cpu.flags))
        }
        XCTAssertFalse(BLASKernel.loadedCoreName.isEmpty)
        XCTAssertNotEqual(BLASKernel.loadedCoreName, "unknown")
        XCTAssertGreaterThanOrEqual(BLASKernel.threadCount, 1)
        XCTAssertTrue(BLASKernel.summary.hasPrefix("OpenBLAS \(BLASKernel.loadedCoreName) ("))
    }
    #endif

    func testReexecutesOnlyWhenTheChosenKernelIsNotLoadedAndNobodyChoseBefore() {
        let reexec = BLASKernel.shouldReexec
        XCTAssertTrue(reexec([:], "Cooperlake", "Prescott"))
        XCTAssertTrue(reexec(["PATH": "/usr/bin"], "SkylakeX", "Haswell"))
        // Already loaded, whatever the case of the name.
        XCTAssertFalse(reexec([:], "SkylakeX", "skylakex"))
        XCTAssertFalse(reexec([:], "Cooperlake", "COOPERLAKE"))
        // Nothing chosen: OpenBLAS decides.
        XCTAssertFalse(reexec([:], nil, "Prescott"))
        // The user's OPENBLAS_CORETYPE wins.
        XCTAssertFalse(reexec(["OPENBLAS_CORETYPE": "Haswell"], "Cooperlake", "Haswell"))
        XCTAssertFalse(reexec(["OPENBLAS_CORETYPE": "Zen"], "Cooperlake", "Haswell"))
        // A re-executed process never re-executes again, even if OpenBLAS ignored the variable.
        XCTAssertFalse(reexec([BLASKernel.reexecMarkerVariable: "1"], "Cooperlake", "Prescott"))
    }
}
