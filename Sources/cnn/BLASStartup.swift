import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Makes OpenBLAS run the kernel chosen for this CPU (BLASKernel.coreType).
///
/// OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded at process start, so changing the
/// kernel means starting again: set the variable and execute the same binary with the same
/// arguments. /proc/self/exe is the binary itself however it was started (through a symlink,
/// from PATH, by a relative path). A marker variable makes sure this happens at most once; a
/// user's own OPENBLAS_CORETYPE is left alone. If the exec fails we go on with the loaded kernel.
func selectBLASKernel() {
    #if os(Linux)
    guard let cpu = BLASKernel.currentCPU() else { return }
    let chosen = BLASKernel.coreType(for: cpu)
    guard BLASKernel.shouldReexec(environment: ProcessInfo.processInfo.environment,
                                  chosen: chosen, loaded: BLASKernel.loadedCoreName),
          let chosen else { return }
    setenv(BLASKernel.coreTypeVariable, chosen, 1)
    setenv(BLASKernel.reexecMarkerVariable, "1", 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // Only reached when the exec failed: carry on, with the environment as the user gave it.
    unsetenv(BLASKernel.coreTypeVariable)
    unsetenv(BLASKernel.reexecMarkerVariable)
    #endif
}
