import Foundation

/// `chorus-fuzz TARGET [ARGS...]`: the fuzz targets over what the network hands a node.
///
/// Built plainly (`swift build --product chorus-fuzz`), it runs each file named in ARGS (or
/// every file in a directory) through TARGET once: a regression run over a corpus, and the way
/// to replay a crash libFuzzer found. Built for libFuzzer (`scripts/fuzz.sh`, which passes
/// `-sanitize=fuzzer` and `-D CHORUS_LIBFUZZER`), ARGS go to libFuzzer, which mutates inputs
/// and keeps those that reach new code.
@main
struct ChorusFuzz {
    static let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
        "peer": PeerTarget.run,
        "request": RequestTarget.run,
        "command": CommandTarget.run,
    ]

    static func main() {
        var arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == "seed-corpus" {
            do {
                try SeedCorpus.write(to: arguments[2])
                return
            } catch {
                FileHandle.standardError.write(Data("cannot write the seed corpus: \(error)\n".utf8))
                exit(1)
            }
        }
        guard arguments.count >= 2, let target = targets[arguments[1]] else {
            FileHandle.standardError.write(Data("usage: chorus-fuzz \(targets.keys.sorted().joined(separator: "|")) [FILES... | libFuzzer options]\n       chorus-fuzz seed-corpus DIR\n".utf8))
            exit(2)
        }
        selected = target
        arguments.remove(at: 1)
        #if CHORUS_LIBFUZZER
        exit(runLibFuzzer(arguments))
        #else
        var count = 0
        for path in arguments.dropFirst() {
            for file in files(at: path) {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                data.withUnsafeBytes { target($0) }
                count += 1
            }
        }
        print("ran \(count) inputs through \(CommandLine.arguments[1]) without a crash")
        #endif
    }

    nonisolated(unsafe) static var selected: (UnsafeRawBufferPointer) -> Void = { _ in }

    static func files(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { "\(path)/\($0)" }
    }
}

#if CHORUS_LIBFUZZER
typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// libFuzzer's entry for programs with a main of their own (`fuzzer_no_main`).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback
) -> CInt

func runLibFuzzer(_ arguments: [String]) -> CInt {
    var argc = CInt(arguments.count)
    let strings = arguments.map { strdup($0) } + [nil]
    let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count)
    argv.initialize(from: strings, count: strings.count)
    var argvPointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argvPointer) { data, size in
        ChorusFuzz.selected(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
#endif
