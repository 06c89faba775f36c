import Engine
import Synchronization

/// What the interpreter has to say. It never prints or writes files itself: it hands events
/// to a sink, and each front end renders them its own way (`cnn run` to stdout, stderr and
/// image files; the shell to the terminal; a notebook into cells; a kernel into messages).
public enum Event {
    /// Text the script printed (`print`, `help`, tables), with its line ending.
    case text(String)
    /// The value of an expression line at the top level of a cell or a shell line, to display.
    case value(DisplayedValue)
    /// A picture to show.
    case image(ImageOutput)
    /// Progress of long work; `finished` comes once at the end, also when it stopped early.
    case progress(ProgressUpdate)
    /// An error with its place in the source (syntax, runtime, or an interruption).
    case error(Diagnostic)
}

/// A value and its text form, so a front end can print the text or render the value richly.
public struct DisplayedValue {
    public let value: Value
    public let text: String
}

/// A picture in display space: [1, H, W] gray or [3, H, W] colour, values in [0, 1].
public struct ImageOutput {
    public let pixels: Tensor
    /// What the picture is, when the script said (a title for a notebook cell).
    public let caption: String?

    public init(pixels: Tensor, caption: String? = nil) {
        self.pixels = pixels
        self.caption = caption
    }

    public var height: Int { pixels.shape.count == 3 ? pixels.shape[1] : 0 }
    public var width: Int { pixels.shape.count == 3 ? pixels.shape[2] : 0 }
}

public struct ProgressUpdate {
    /// Tells apart several progress bars of one run.
    public let id: Int
    public let label: String
    public let completed: Int
    /// nil when the amount of work is not known in advance.
    public let total: Int?
    public let finished: Bool
    /// A short status after the bar, such as "loss 0.231".
    public let status: String

    public init(id: Int, label: String, completed: Int, total: Int?, finished: Bool, status: String = "") {
        self.id = id
        self.label = label
        self.completed = completed
        self.total = total
        self.finished = finished
        self.status = status
    }
}

/// Where events go.
public protocol EventSink: AnyObject {
    func emit(_ event: Event)
}

/// A sink that keeps every event, for tests and for front ends that render at the end.
public final class EventRecorder: EventSink {
    public private(set) var events: [Event] = []
    public init() {}
    public func emit(_ event: Event) { events.append(event) }

    /// Everything as `cnn run` would print it on one terminal, in order.
    public var transcript: String {
        events.map { e -> String in
            switch e {
            case .text(let t): return t
            case .value(let v): return v.text + "\n"
            case .image(let i): return "[image \(i.width)x\(i.height)]\n"
            case .progress: return ""
            case .error(let d): return d.rendered()
            }
        }.joined()
    }
}

/// A flag that asks running work to stop. Setting it is a single atomic store, so a signal
/// handler or another thread (a kernel's interrupt) may set it at any time; the interpreter
/// checks it at every statement and loop iteration and hands it to the engine.
public final class CancellationFlag: Sendable {
    private let state = Atomic<Bool>(false)

    public init() {}

    public func cancel() { state.store(true, ordering: .relaxed) }
    public func reset() { state.store(false, ordering: .relaxed) }
    public var isCancelled: Bool { state.load(ordering: .relaxed) }
}
