// The cnn command line. The BLAS kernel is settled before anything runs BLAS, because
// settling it may re-execute the process (see BLASStartup.swift).
selectBLASKernel()
CNN.main()
