import Foundation

/// A model or weight file that could not be read or written: which file, what was wrong,
/// and, where there is one, what would have been valid.
///
///     weights.safetensors: tensor 'fc.weight' has dtype 'F8'; expected one of F32, F16, BF16, ...
public struct ModelFileError: Error, Equatable, CustomStringConvertible {
    /// The file as the caller named it.
    public var path: String
    /// What was wrong, in a phrase.
    public var problem: String
    /// What would have been valid, if that can be said briefly.
    public var expected: String?

    public init(path: String, problem: String, expected: String? = nil) {
        self.path = path
        self.problem = problem
        self.expected = expected
    }

    public var description: String {
        guard let expected else { return "\(path): \(problem)" }
        return "\(path): \(problem); expected \(expected)"
    }
}

/// What a decoder finds wrong inside a file; `withFile` adds the file's path.
struct FormatProblem: Error {
    var problem: String
    var expected: String?

    init(_ problem: String, expected: String? = nil) {
        self.problem = problem
        self.expected = expected
    }

    /// The same problem, said of a part of the file (an entry, a tensor, a field).
    func within(_ context: String) -> FormatProblem {
        FormatProblem("\(context): \(problem)", expected: expected)
    }
}

/// Runs `body`, turning any problem it throws into a `ModelFileError` naming `url`.
func withFile<T>(_ url: URL, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ModelFileError {
        throw error
    } catch let problem as FormatProblem {
        throw ModelFileError(path: url.path, problem: problem.problem, expected: problem.expected)
    } catch {
        throw ModelFileError(path: url.path, problem: "cannot be read or written (\(error))")
    }
}

/// Runs `body`, adding `context` to any problem it throws.
func within<T>(_ context: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let problem as FormatProblem {
        throw problem.within(context())
    }
}
