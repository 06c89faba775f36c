import Foundation

/// `cnn-fuzz TARGET [libFuzzer flags and corpus folders]`: runs libFuzzer on one entry of
/// `targets`. libFuzzer's own driver runs on a thread with a large stack, as the shell runs
/// scripts, so that the interpreter's depth limits (not the stack) are what deep inputs meet.
/// `cnn-fuzz TARGET FILE...` replays inputs (libFuzzer runs each file once when given files).
@main
struct FuzzMain {
    static func main() {
        var arguments = CommandLine.arguments
        guard arguments.count >= 2, let target = targets[arguments[1]] else {
            let names = targets.keys.sorted().joined(separator: ", ")
            FileHandle.standardError.write(Data("usage: cnn-fuzz TARGET [libFuzzer options] [corpus...]\ntargets: \(names)\n".utf8))
            exit(2)
        }
        selected = target
        arguments.remove(at: 1)
        let status = withLargeStack(megabytes: 1024) { () -> Int32 in
            // libFuzzer may keep pointers into argv for the whole run: the strings are never freed.
            var argc = Int32(arguments.count)
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = UnsafeMutablePointer.allocate(capacity: arguments.count + 1)
            for (i, a) in arguments.enumerated() { argv![i] = strdup(a) }
            argv![arguments.count] = nil
            return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
        }
        exit(status)
    }
}

/// The entry of the fuzz target chosen on the command line.
nonisolated(unsafe) var selected: (Data) -> Void = { _ in }

private func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Data(bytes: $0, count: size) } ?? Data()
    selected(bytes)
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32
