import Engine
import Script
import Foundation

// The cnn command line. The BLAS kernel is settled before anything runs BLAS, because
// settling it may re-execute the process (see BLASStartup.swift).
selectBLASKernel()
// A memory limit that is no size is refused before anything runs under the wrong one.
if let problem = MemoryLimit.environmentProblem ?? Interpreter.Options.environmentStepBudgetProblem {
    FileHandle.standardError.write(Data("cnn: \(problem)\n".utf8))
    exit(2)
}
CNN.main()
