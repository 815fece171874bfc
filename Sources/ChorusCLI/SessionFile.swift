import Foundation

/// The logged-in session, kept between one-shot commands in a file only its owner can read.
struct SessionFile {
    var name: String
    var token: String

    static var defaultPath: String { path(in: ProcessInfo.processInfo.environment) }

    /// `CHORUS_SESSION_FILE`, else `chorus/session.json` under `XDG_CONFIG_HOME`, else under
    /// `$HOME/.config`. `HOME` is read before the password database (`NSHomeDirectory`, which
    /// ignores it on Linux) so that `HOME=… chorus` keeps its own session, as every other
    /// command-line tool does; empty and relative values are ignored, as the XDG spec says.
    static func path(in environment: [String: String]) -> String {
        if let path = environment["CHORUS_SESSION_FILE"], !path.isEmpty { return path }
        func absolute(_ name: String) -> String? {
            environment[name].flatMap { $0.hasPrefix("/") ? $0 : nil }
        }
        let base = absolute("XDG_CONFIG_HOME") ?? ((absolute("HOME") ?? NSHomeDirectory()) + "/.config")
        return base + "/chorus/session.json"
    }

    static func load() throws -> SessionFile {
        guard let data = FileManager.default.contents(atPath: defaultPath),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: String],
              let name = object["name"], let token = object["token"]
        else {
            throw CLIError(message: "not logged in: run `chorus login NAME` (or `chorus register NAME`) first")
        }
        return SessionFile(name: name, token: token)
    }

    func save() throws {
        let path = Self.defaultPath
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let data = try JSONSerialization.data(withJSONObject: ["name": name, "token": token])
        // Created with owner-only permissions before the secret is written.
        _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        chmod(path, 0o600)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw CLIError(message: "cannot write \(path)") }
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: data)
        try handle.close()
    }

    static func remove() {
        try? FileManager.default.removeItem(atPath: defaultPath)
    }
}

/// Reads a password: from the terminal without echo, or a line of stdin when piped. Never
/// from a flag, where it would land in shell history and `ps`.
func readPassword(prompt: String) throws -> String {
    if isatty(STDIN_FILENO) == 1 {
        FileHandle.standardError.write(Data(prompt.utf8))
        let echo = EchoOff()
        let line = readLine(strippingNewline: true)
        echo.restore()
        FileHandle.standardError.write(Data("\n".utf8))
        guard let line else { throw CLIError(message: "no password given") }
        return line
    }
    guard let line = readLine(strippingNewline: true) else {
        throw CLIError(message: "no password on standard input")
    }
    return line
}

/// Turns the terminal's echo off until `restore()` (nothing to do when stdin is not a
/// terminal), so a password is never shown.
struct EchoOff {
    private let saved: termios?

    init() {
        guard isatty(STDIN_FILENO) == 1 else {
            saved = nil
            return
        }
        var current = termios()
        tcgetattr(STDIN_FILENO, &current)
        var silent = current
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &silent)
        saved = current
    }

    func restore() {
        guard var saved else { return }
        tcsetattr(STDIN_FILENO, TCSANOW, &saved)
    }
}

/// The interactive client's variant: the line comes from its line reader (which owns stdin),
/// with echo off while it is typed.
func readPassword(prompt: String, from lines: LineReader) async throws -> String {
    let echo = EchoOff()
    let line = await lines.next(prompt: prompt)
    echo.restore()
    if isatty(STDIN_FILENO) == 1 { FileHandle.standardOutput.write(Data("\n".utf8)) }
    guard let line else { throw CLIError(message: "no password given") }
    return line
}
