// swift-tools-version:6.0
import PackageDescription

// -O keeps preconditions and bounds checks: a bad index traps instead of reading memory.
let optimize: [SwiftSetting] = [
    .unsafeFlags(["-wmo"], .when(configuration: .release)),
]
// The engine's numeric kernels alone go without them: every index they compute comes from
// shapes checked before the loop (ConvProblem, PoolOptions, checkedElementCount), and with
// checks EfficientNet's forward pass and class-visualization step are 14-16 % slower (cnn
// bench). Files, scripts and the kernel's messages are decoded in the other targets, checked.
// On x86-64 they are compiled for Haswell's instruction set (AVX2, FMA: every x86-64 server CPU
// since 2015, AMD's since Zen):
// the elementwise loops, depthwise convolutions and pooling run eight floats at a time instead
// of four. `cnn` checks the CPU before anything else runs and says so where it lacks them.
#if arch(x86_64)
let kernelCPU = ["-target-cpu", "haswell"]
#else
let kernelCPU: [String] = []
#endif
let optimizeKernels: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"] + kernelCPU, .when(configuration: .release)),
]

// Swift 6 language mode, where the compiler checks shared mutable state (the autodiff tape,
// the memory limit, caches); the other targets follow as they are made to pass it.
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "cnnlab",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "cnn", targets: ["cnn"]),
        // For the fuzz targets in Tests/Fuzz, a package of their own that builds on these.
        .library(name: "CNNLab", targets: ["Engine", "Imaging", "Models", "Visualize", "Script", "Shell"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        .package(url: "https://github.com/JohnSundell/Ink", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C libraries from Debian.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CKernels", path: "Sources/CKernels"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CGzip", path: "Sources/CGzip", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CReadline", path: "Sources/CReadline", providers: [.apt(["libreadline-dev"])]),
        .systemLibrary(name: "CZMQ", path: "Sources/CZMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CSixel", path: "Sources/CSixel", providers: [.apt(["libsixel-dev"])]),

        // Tensors, ops with their backward passes, autodiff, networks, optimizers.
        .target(name: "Engine", dependencies: ["CBLAS", "CKernels"], swiftSettings: optimizeKernels + swift6),
        // PNG and JPEG decoding in C, so that libpng's and libjpeg's longjmp never crosses Swift frames.
        .target(name: "CImageCodecs", path: "Sources/CImageCodecs",
                linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]),
        // Image codecs, transforms and rendering of tensors as pictures.
        .target(name: "Imaging", dependencies: ["Engine", "CPNG", "CImageCodecs"], swiftSettings: optimize),
        // Model and weight files: safetensors, ONNX, NumPy, PyTorch state dicts; the model zoo
        // and its fetched weights (SHA-256 from swift-crypto).
        .target(name: "Models", dependencies: ["Engine", "Imaging", "CGzip", .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                                               .product(name: "Crypto", package: "swift-crypto")],
                resources: [.copy("Resources")],
                swiftSettings: optimize + swift6),
        // Looking inside trained networks: filters, activations, receptive fields, saliency,
        // class models, inversion, deconvnet, guided backpropagation, Grad-CAM, occlusion, plots.
        .target(name: "Visualize", dependencies: ["Engine", "Imaging"], swiftSettings: optimize),
        // The language: lexer, parser, interpreter, values and the registry of builtins.
        .target(name: "Script", dependencies: ["Engine", "Imaging", "Models", "Visualize"], swiftSettings: optimize + swift6),
        // Front ends: `cnn run`, the readline shell, notebooks and the Jupyter kernel; they decide
        // where the interpreter's events go.
        .target(name: "Shell", dependencies: [
            "Script", "Engine", "Imaging", "CReadline", "CZMQ", "CSixel",
            .product(name: "Ink", package: "Ink"),
            .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: optimize),
        // The command line: argument parsing, and the workloads `cnn bench` times.
        .executableTarget(name: "cnn", dependencies: [
            "Engine", "Imaging", "Models", "Visualize", "Shell",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: optimize),

        .testTarget(name: "EngineTests", dependencies: ["Engine"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Imaging"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ScriptTests", dependencies: ["Script", "Engine"], exclude: ["TOUR.md"]),
        .testTarget(name: "ShellTests", dependencies: ["Shell", "Script", "Engine"], exclude: ["Golden", "kernel_client.py"]),
        .testTarget(name: "VisualizeTests", dependencies: ["Visualize", "Models", "Imaging"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v5]
)
