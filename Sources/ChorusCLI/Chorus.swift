import ArgumentParser
import Client
import ClusterPKI
import Foundation

/// `chorus`: the terminal client.
@main
struct Chorus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "Talk to a Chorus cluster: one-shot commands, or `chorus chat` for an interactive session.",
        discussion: """
            The cluster is found through --endpoints or CHORUS_ENDPOINTS (host:port, comma-separated); \
            the default matches scripts/cluster.sh. Its certificates are checked against the CA in --ca \
            or CHORUS_CA, or the local cluster's (data/certs/ca.pem) when it exists. After `chorus login` the session is kept in \
            \(SessionFile.defaultPath) (readable by you only).
            """,
        subcommands: [
            Register.self, Login.self, Logout.self, Users.self, Send.self, Read.self, History.self,
            Edit.self, Delete.self, DeleteAccount.self, Group.self, Status.self, Chat.self,
        ]
    )
}

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Cluster nodes as host:port,host:port,… (default: $CHORUS_ENDPOINTS or the local cluster).")
    var endpoints: String?

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    @Option(help: "Seconds to keep retrying while the cluster has no leader.")
    var timeout: Int = 10

    @Option(help: "The cluster's CA certificate (default: $CHORUS_CA, or data/certs/ca.pem with the local cluster's endpoints).")
    var ca: String?

    @Flag(help: "Talk plaintext, to a cluster run with --insecure.")
    var insecure = false

    static let localCA = "data/certs/ca.pem"

    var security: ClientSecurity {
        if insecure { return .plaintext }
        if let path = ca ?? ProcessInfo.processInfo.environment["CHORUS_CA"] { return .tls(ca: path) }
        // The local cluster's CA goes with the local cluster's endpoints only.
        let local = endpoints == nil && ProcessInfo.processInfo.environment["CHORUS_ENDPOINTS"] == nil
        return local && FileManager.default.fileExists(atPath: Self.localCA) ? .tls(ca: Self.localCA) : .plaintext
    }

    var endpointList: [String] {
        let text = endpoints ?? ProcessInfo.processInfo.environment["CHORUS_ENDPOINTS"]
            ?? (7001...7005).map { "127.0.0.1:\($0)" }.joined(separator: ",")
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Runs `body` with a client, turning failures into a message and an exit code.
    func run(_ body: (ChorusClient, Output) async throws -> Void) async throws {
        let output = Output(json: json)
        do {
            try await withChorusClient(endpoints: endpointList, deadline: .seconds(timeout), security: security) { client in
                try await body(client, output)
            }
        } catch let error as ChorusError {
            output.fail(error)
            throw ExitCode(Output.exitCode(for: error))
        } catch let error as CLIError {
            output.fail(message: error.message, code: "usage")
            throw ExitCode(2)
        }
    }
}

struct CLIError: Error {
    var message: String
}
