import Engine
import Script
import Foundation

// The cnn command line. First of all, the CPU: the engine is built for AVX2 and FMA on x86-64.
if let missing = missingCPUFeatures() {
    FileHandle.standardError.write(Data(("cnn: this CPU lacks \(missing.joined(separator: ", ")), which this build of cnnlab's engine "
        + "is compiled for (Package.swift, kernelCPU); build it without the -target-cpu flag there to run on this machine\n").utf8))
    exit(2)
}
// The BLAS kernel is settled before anything runs BLAS, because
// settling it may re-execute the process (see BLASStartup.swift).
selectBLASKernel()
// A memory limit that is no size is refused before anything runs under the wrong one.
if let problem = MemoryLimit.environmentProblem ?? Interpreter.Options.environmentStepBudgetProblem {
    FileHandle.standardError.write(Data("cnn: \(problem)\n".utf8))
    exit(2)
}
CNN.main()
