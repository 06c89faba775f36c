import Foundation
import Script

// The flag Ctrl-C sets. A signal handler can capture nothing, so it reads these globals;
// they are written only while no handler is installed.
nonisolated(unsafe) private var interruptTarget: CancellationFlag?
nonisolated(unsafe) private var exitOnRepeatedInterrupt = false

/// SIGINT sets a cancellation flag instead of ending the process, so a long computation
/// stops where it is and the session keeps its variables.
enum InterruptHandler {
    struct Installation {
        func uninstall() {
            signal(SIGINT, SIG_DFL)
            interruptTarget = nil
        }
    }

    /// With `exitOnRepeat`, a second Ctrl-C before the first was handled ends the process
    /// (for `cnn run`, where a stuck computation should not hold the terminal).
    static func install(_ flag: CancellationFlag, exitOnRepeat: Bool = true) -> Installation {
        interruptTarget = flag
        exitOnRepeatedInterrupt = exitOnRepeat
        signal(SIGINT) { _ in
            guard let target = interruptTarget else { return }
            if exitOnRepeatedInterrupt && target.isCancelled { _exit(130) }
            target.cancel()
        }
        return Installation()
    }
}
