import Engine
import Foundation
import Script

// `cnn-fuzz TARGET [libFuzzer flags] [corpus folders or input files]`: libFuzzer on one entry
// of `targets`. LLVMFuzzerInitialize takes TARGET off the command line before libFuzzer reads
// its flags. Given files instead of folders, libFuzzer runs each once, which replays a crash.

/// The program's entry (SwiftPM links an executable's `main` to `<module>_main`): libFuzzer's
/// driver on a thread with a large stack, as the shell runs scripts, so that the interpreter's
/// depth limits, not the stack, are what deeply nested inputs meet.
@_cdecl("cnn_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    nonisolated(unsafe) let argv = argv
    return withLargeStack(megabytes: 1024) { () -> Int32 in
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments, testOneInput)
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// The entry of the fuzz target chosen on the command line.
nonisolated(unsafe) var selected: (Data) -> Void = { _ in }

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> Int32 {
    let count = Int(argc.pointee)
    let name = count >= 2 ? argv.pointee[1].map { String(cString: $0) } : nil
    guard let name, let target = targets[name] else {
        let names = targets.keys.sorted().joined(separator: ", ")
        FileHandle.standardError.write(Data("usage: cnn-fuzz TARGET [libFuzzer options] [corpus...]\ntargets: \(names)\n".utf8))
        exit(2)
    }
    selected = target
    // A file may ask for at most 64 MB a value here: far under the 2 GB that libFuzzer's
    // -rss_limit_mb allows, so what the limit lets through cannot end a run by its size alone,
    // and files that ask for more meet the refusal users get (CNN_MAX_MEMORY's).
    MemoryLimit.bytes = 64 << 20
    // libFuzzer keeps argv; shifting its entries in place takes TARGET out.
    for i in 1..<count { argv.pointee[i] = argv.pointee[i + 1] }
    argc.pointee -= 1
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selected(data.map { Data(bytes: $0, count: size) } ?? Data())
    return 0
}
