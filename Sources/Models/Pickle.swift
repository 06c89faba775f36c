import Engine
import Foundation

/// A value built by the restricted unpickler. Nothing in it can run code: globals are only
/// the names the caller allowed, and calling one is the caller's own Swift function.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes(Data)
    case tuple([PickleValue], depth: Int)
    case list(PickleList)
    case dict(PickleDict)
    /// A global the caller allowed, by "module.name".
    case global(String)
    /// Whatever the caller's persistent-load or call functions return (storages, tensors).
    case tensor(Tensor)
    case storage(PickleStorage)

    /// How deeply containers nest inside this value (0 for scalars).
    var depth: Int {
        switch self {
        case .tuple(_, let depth): return depth
        case .list(let list): return list.depth
        case .dict(let dict): return dict.depth
        default: return 0
        }
    }

    /// A short name of the value's kind, for error messages (never the value itself, which may be huge).
    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int: return "an int"
        case .float: return "a float"
        case .string: return "a string"
        case .bytes: return "bytes"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case .global(let name): return name
        case .tensor: return "a tensor"
        case .storage: return "a storage"
        }
    }
}

/// A tensor storage named by a persistent id: its key in the archive, element type and length.
struct PickleStorage {
    var key: String
    var type: ElementType
    var count: Int
}

/// Lists and dicts are shared through the memo and filled after they are created, so they are boxes.
/// A container may not change once it sits inside another (Python's pickler never does that),
/// which keeps every recorded depth exact and the nesting bounded.
final class PickleList {
    var items: [PickleValue] = []
    var depth = 1
    var isNested = false
}

final class PickleDict {
    private(set) var entries: [(key: PickleValue, value: PickleValue)] = []
    private var stringIndex: [String: Int] = [:]
    private var intIndex: [Int: Int] = [:]
    var depth = 1
    var isNested = false

    subscript(key: String) -> PickleValue? {
        stringIndex[key].map { entries[$0].value }
    }

    func set(_ key: PickleValue, _ value: PickleValue) {
        let existing: Int?
        switch key {
        case .string(let s): existing = stringIndex[s]; if existing == nil { stringIndex[s] = entries.count }
        case .int(let i): existing = intIndex[i]; if existing == nil { intIndex[i] = entries.count }
        default: existing = nil
        }
        if let existing { entries[existing].value = value } else { entries.append((key, value)) }
    }
}

/// A pickle virtual machine for the opcodes of protocols 2 to 5 that state dicts use.
/// It resolves globals and persistent ids and performs calls only through the functions it is given.
struct Unpickler {
    /// Returns the value standing for an allowed global, or throws naming a refused one.
    var findGlobal: (_ module: String, _ name: String) throws -> PickleValue
    /// Applies an allowed global to arguments (REDUCE and NEWOBJ).
    var call: (_ callable: PickleValue, _ arguments: [PickleValue]) throws -> PickleValue
    /// Resolves a persistent id (BINPERSID) to the object it names.
    var persistentLoad: (_ id: PickleValue) throws -> PickleValue

    /// Containers nested deeper than this are refused: state dicts nest a handful of levels,
    /// and releasing a very deep value would recurse past the end of the stack.
    static let deepestNesting = 100

    func load(_ bytes: UnsafeRawBufferPointer) throws -> PickleValue {
        try load(bytes, from: 0).value
    }

    /// Reads the pickle that starts at `offset`; returns its value and the offset just past its
    /// STOP opcode, where the next pickle or data may follow (PyTorch's legacy format).
    func load(_ bytes: UnsafeRawBufferPointer, from offset: Int) throws -> (value: PickleValue, end: Int) {
        var machine = Machine(reader: ByteReader(bytes, position: offset), unpickler: self)
        let value = try machine.run()
        return (value, machine.reader.position)
    }
}

private struct Machine {
    var reader: ByteReader
    let unpickler: Unpickler
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]

    mutating func run() throws -> PickleValue {
        while true {
            let offset = reader.position
            guard !reader.isAtEnd else { throw FormatProblem("pickle ends at byte \(offset) without a STOP opcode") }
            let opcode = try reader.read(UInt8.self)
            do {
                if let result = try step(opcode) { return result }
            } catch let problem as FormatProblem {
                throw problem.within("pickle opcode \(opcodeName(opcode)) at byte \(offset)")
            }
        }
    }

    /// Executes one opcode; returns the result at STOP.
    private mutating func step(_ opcode: UInt8) throws -> PickleValue? {
        switch opcode {
        case 0x80: // PROTO
            let version = try reader.read(UInt8.self)
            guard version <= 5 else { throw FormatProblem("protocol \(version) is unknown", expected: "2 to 5") }
        case 0x95: // FRAME: a length prefix for buffering; the bytes follow inline
            let length = try reader.read(UInt64.self)
            guard length <= UInt64(reader.remaining) else { throw FormatProblem("frame of \(length) bytes runs past the end") }
        case UInt8(ascii: "."): // STOP
            return try pop()
        case UInt8(ascii: "N"): stack.append(.none)
        case 0x88: stack.append(.bool(true))  // NEWTRUE
        case 0x89: stack.append(.bool(false))  // NEWFALSE
        case UInt8(ascii: "J"): stack.append(.int(Int(try reader.read(Int32.self))))  // BININT
        case UInt8(ascii: "K"): stack.append(.int(Int(try reader.read(UInt8.self))))  // BININT1
        case UInt8(ascii: "M"): stack.append(.int(Int(try reader.read(UInt16.self))))  // BININT2
        case 0x8a: // LONG1: n bytes of little-endian two's complement
            let n = Int(try reader.read(UInt8.self))
            guard n <= 8 else { throw FormatProblem("integer of \(n) bytes does not fit in 64 bits") }
            let digits = try reader.read(count: n)
            var value: UInt64 = 0
            for (i, byte) in digits.enumerated() { value |= UInt64(byte) << (8 * UInt64(i)) }
            if n > 0, n < 8, digits[n - 1] & 0x80 != 0 { value |= ~0 << (8 * UInt64(n)) }  // sign-extend
            stack.append(.int(Int(Int64(bitPattern: value))))
        case UInt8(ascii: "G"): // BINFLOAT: big-endian double
            stack.append(.float(Double(bitPattern: UInt64(bigEndian: UInt64(littleEndian: try reader.read(UInt64.self))))))
        case UInt8(ascii: "X"): stack.append(.string(try text(Int(try reader.read(UInt32.self)))))  // BINUNICODE
        case 0x8c: stack.append(.string(try text(Int(try reader.read(UInt8.self)))))  // SHORT_BINUNICODE
        case 0x8d: stack.append(.string(try text(try length64())))  // BINUNICODE8
        case UInt8(ascii: "B"): stack.append(.bytes(Data(try reader.read(count: Int(try reader.read(UInt32.self))))))  // BINBYTES
        case UInt8(ascii: "C"): stack.append(.bytes(Data(try reader.read(count: Int(try reader.read(UInt8.self))))))  // SHORT_BINBYTES
        case 0x8e: stack.append(.bytes(Data(try reader.read(count: try length64()))))  // BINBYTES8
        case UInt8(ascii: ")"): stack.append(.tuple([], depth: 1))  // EMPTY_TUPLE
        case UInt8(ascii: "t"): stack.append(try tuple(try popToMark()))  // TUPLE
        case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
            let n = Int(opcode - 0x84)
            guard stack.count >= n else { throw FormatProblem("needs \(n) values, the stack holds \(stack.count)") }
            let items = Array(stack.suffix(n))
            stack.removeLast(n)
            stack.append(try tuple(items))
        case UInt8(ascii: "]"): stack.append(.list(PickleList()))  // EMPTY_LIST
        case UInt8(ascii: "l"): // LIST
            let list = PickleList()
            try append(try popToMark(), to: list)
            stack.append(.list(list))
        case UInt8(ascii: "a"): // APPEND
            let item = try pop()
            try append([item], to: try topList())
        case UInt8(ascii: "e"): // APPENDS
            let items = try popToMark()
            try append(items, to: try topList())
        case UInt8(ascii: "}"): stack.append(.dict(PickleDict()))  // EMPTY_DICT
        case UInt8(ascii: "d"): // DICT
            let dict = PickleDict()
            try setItems(try popToMark(), in: dict)
            stack.append(.dict(dict))
        case UInt8(ascii: "s"): // SETITEM
            let value = try pop(), key = try pop()
            try setItems([key, value], in: try topDict())
        case UInt8(ascii: "u"): // SETITEMS
            let items = try popToMark()
            try setItems(items, in: try topDict())
        case UInt8(ascii: "("): marks.append(stack.count)  // MARK
        case UInt8(ascii: "0"): _ = try pop()  // POP
        case UInt8(ascii: "1"): _ = try popToMark()  // POP_MARK
        case UInt8(ascii: "2"): stack.append(try top())  // DUP
        case UInt8(ascii: "c"): // GLOBAL: "module\nname\n"
            let module = try line(), name = try line()
            stack.append(try unpickler.findGlobal(module, name))
        case 0x93: // STACK_GLOBAL
            let name = try pop(), module = try pop()
            guard case .string(let n) = name, case .string(let m) = module else {
                throw FormatProblem("global name is \(module.kind) and \(name.kind), not two strings")
            }
            stack.append(try unpickler.findGlobal(m, n))
        case UInt8(ascii: "R"), 0x81: // REDUCE callable(*args); NEWOBJ cls.__new__(cls, *args)
            let arguments = try pop(), callable = try pop()
            guard case .tuple(let items, _) = arguments else { throw FormatProblem("arguments are \(arguments.kind), not a tuple") }
            guard case .global = callable else { throw FormatProblem("calls \(callable.kind), which is not an allowed global") }
            let result = try unpickler.call(callable, items)
            try checkDepth(result.depth)
            stack.append(result)
        case UInt8(ascii: "b"): // BUILD: sets an object's state; the objects allowed here keep none that matters
            _ = try pop()
            _ = try top()
        case UInt8(ascii: "Q"): // BINPERSID
            stack.append(try unpickler.persistentLoad(try pop()))
        case UInt8(ascii: "q"): memo[Int(try reader.read(UInt8.self))] = try top()  // BINPUT
        case UInt8(ascii: "r"): memo[Int(try reader.read(UInt32.self))] = try top()  // LONG_BINPUT
        case 0x94: memo[memo.count] = try top()  // MEMOIZE
        case UInt8(ascii: "h"): stack.append(try memoized(Int(try reader.read(UInt8.self))))  // BINGET
        case UInt8(ascii: "j"): stack.append(try memoized(Int(try reader.read(UInt32.self))))  // LONG_BINGET
        default:
            throw FormatProblem("is not one a state dict needs")
        }
        return nil
    }

    // MARK: - Stack

    private mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast() else { throw FormatProblem("pops an empty stack") }
        if let mark = marks.last, stack.count < mark { throw FormatProblem("pops past a MARK") }
        return value
    }

    /// The top of the stack, which must lie above the innermost MARK (as in Python's unpickler).
    private func top() throws -> PickleValue {
        guard let value = stack.last, stack.count > (marks.last ?? 0) else { throw FormatProblem("reads an empty stack") }
        return value
    }

    private mutating func popToMark() throws -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw FormatProblem("has no MARK to pop to") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private func memoized(_ index: Int) throws -> PickleValue {
        guard let value = memo[index] else { throw FormatProblem("refers to memo entry \(index), which was never stored") }
        return value
    }

    private func topList() throws -> PickleList {
        let value = try top()
        guard case .list(let list) = value else { throw FormatProblem("appends to \(value.kind), not a list") }
        return list
    }

    private func topDict() throws -> PickleDict {
        let value = try top()
        guard case .dict(let dict) = value else { throw FormatProblem("sets items of \(value.kind), not a dict") }
        return dict
    }

    // MARK: - Containers

    private func checkDepth(_ depth: Int) throws {
        guard depth <= Unpickler.deepestNesting else {
            throw FormatProblem("nests containers deeper than \(Unpickler.deepestNesting) levels")
        }
    }

    /// Marks `items` as nested and returns the depth of a container holding them.
    private func nest(_ items: [PickleValue]) throws -> Int {
        var depth = 1
        for item in items {
            switch item {
            case .list(let list): list.isNested = true
            case .dict(let dict): dict.isNested = true
            default: break
            }
            depth = max(depth, item.depth + 1)
        }
        try checkDepth(depth)
        return depth
    }

    private func tuple(_ items: [PickleValue]) throws -> PickleValue {
        .tuple(items, depth: try nest(items))
    }

    private func append(_ items: [PickleValue], to list: PickleList) throws {
        guard !list.isNested else { throw FormatProblem("changes a list after nesting it in another container") }
        list.depth = max(list.depth, try nest(items))
        list.items.append(contentsOf: items)
    }

    private func setItems(_ items: [PickleValue], in dict: PickleDict) throws {
        guard items.count % 2 == 0 else { throw FormatProblem("has a key without a value") }
        guard !dict.isNested else { throw FormatProblem("changes a dict after nesting it in another container") }
        dict.depth = max(dict.depth, try nest(items))
        for i in stride(from: 0, to: items.count, by: 2) { dict.set(items[i], items[i + 1]) }
    }

    // MARK: - Operands

    private mutating func text(_ length: Int) throws -> String {
        String(decoding: try reader.read(count: length), as: UTF8.self)
    }

    private mutating func length64() throws -> Int {
        let length = try reader.read(UInt64.self)
        guard length <= UInt64(reader.remaining) else { throw FormatProblem("length \(length) runs past the end") }
        return Int(length)
    }

    /// A newline-terminated ASCII line of at most 256 bytes (GLOBAL's operands).
    private mutating func line() throws -> String {
        var bytes: [UInt8] = []
        while true {
            let byte = try reader.read(UInt8.self)
            if byte == UInt8(ascii: "\n") { break }
            guard bytes.count < 256 else { throw FormatProblem("has a global name longer than 256 bytes") }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// "0x52 'R'" for an opcode, printable when it is.
private func opcodeName(_ opcode: UInt8) -> String {
    let hex = "0x" + String(opcode, radix: 16)
    return (0x21...0x7e).contains(opcode) ? "\(hex) '\(Character(Unicode.Scalar(opcode)))'" : hex
}
