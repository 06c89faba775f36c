// swift-tools-version:6.0
// The fuzz targets: one executable, `cnn-fuzz TARGET [libFuzzer flags]`, built by scripts/fuzz
// with `-sanitize=fuzzer,address` on every module, so coverage reaches the whole package.
import PackageDescription

let package = Package(
    name: "cnnlab-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "cnnlab", path: "../..")],
    targets: [
        .executableTarget(name: "cnn-fuzz", dependencies: [.product(name: "CNNLab", package: "cnnlab")]),
    ],
    swiftLanguageModes: [.v5]
)
