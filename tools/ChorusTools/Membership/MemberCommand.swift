import ArgumentParser
import Client
import ClusterPKI
import Foundation
import ToolSupport

/// An operator's TLS files, checked before any connection: an unreadable file or a
/// certificate that is not an operator's is named here rather than failing every handshake.
struct OperatorCertificate: ParsableArguments {
    @Option(help: "With TLS: the cluster's CA.") var ca: String?
    @Option(help: "With TLS: an operator certificate (`chorus-tools certs operator`).") var cert: String?
    @Option(help: "With TLS: the operator certificate's key.") var key: String?

    /// The files, or nil for an insecure cluster.
    func files() throws -> TLSFiles? {
        switch (ca, cert, key) {
        case let (ca?, cert?, key?):
            let files = TLSFiles(ca: ca, certificate: cert, key: key)
            let identity: Identity
            do { identity = try files.identity() } catch { throw ToolError("\(error)") }
            guard case .operator = identity else {
                throw ToolError("\(cert) is the certificate of \(identity); the Admin API takes an operator certificate (`chorus-tools certs operator`)")
            }
            return files
        case (nil, nil, nil):
            return nil
        default:
            throw ValidationError("give all of --ca, --cert and --key, or none (an insecure cluster)")
        }
    }
}

/// The Admin API's connection options: the nodes' peer addresses and an operator certificate.
struct AdminOptions: ParsableArguments {
    @Option(help: "Peer addresses of the nodes (--peer-listen, or --listen of insecure nodes), host:port,…") var endpoints: String
    @OptionGroup var certificate: OperatorCertificate
    @Option(help: "Seconds each node has to answer a question (who leads, who is a member); the ones that do not are named.") var answerWithin: Double = 5

    func admin() throws -> ClusterAdmin {
        let credentials = try certificate.files()
        let list = endpoints.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !list.isEmpty else { throw ValidationError("--endpoints names no node") }
        guard answerWithin > 0, answerWithin <= 3_600 else { throw ValidationError("--answer-within is seconds, more than 0 and at most 3600") }
        return ClusterAdmin(endpoints: list, operator: credentials, answerWithin: .milliseconds(Int64(answerWithin * 1_000)))
    }
}

/// `chorus-tools member`: who is in the cluster, and changing that one server at a time.
struct MemberCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "member",
        abstract: "List, add, promote or remove members of a running cluster (one change at a time, on the leader).",
        subcommands: [List.self, Add.self, Promote.self, Remove.self]
    )

    static func show(_ membership: Membership) {
        print("leader: node \(membership.leaderID) (term \(membership.term)); commit \(membership.commitIndex), last \(membership.lastIndex); as seen by node \(membership.nodeID)")
        let leading = membership.nodeID == membership.leaderID
        for member in membership.members {
            let role = member.id == membership.leaderID ? "leader" : member.voter ? "voter" : "learner"
            var line = "  \(member.id)  \(role.padding(toLength: 7, withPad: " ", startingAt: 0))  peer \(member.peerAddress)  client \(member.clientAddress.isEmpty ? "-" : member.clientAddress)"
            if leading {
                let behind = membership.lastIndex >= member.matchIndex ? membership.lastIndex - member.matchIndex : 0
                line += "  match \(member.matchIndex) (\(behind) behind)\(member.active ? "" : "  NOT ANSWERING")"
            }
            print(line)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The members, and on the leader how far behind each is.")
        @OptionGroup var options: AdminOptions

        func run() async throws {
            let survey = await (try options.admin()).survey()
            guard let best = survey.best else { throw ToolError("no node answered: \(survey.silentSummary)") }
            MemberCommand.show(best)
            for (endpoint, reason) in survey.silent {
                print("  no answer from \(endpoint): \(reason)")
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Add a node as a learner (start it with --join first); it catches up from the log or a snapshot."
        )
        @OptionGroup var options: AdminOptions
        @Argument(help: "The new node's id (never one the cluster had before).") var id: UInt64
        @Option(help: "Where peers reach it, host:port.") var peerAddress: String
        @Option(help: "Where clients reach it, host:port (default: the peer address).") var clientAddress: String = ""
        @Flag(help: "Make it a voter once it has caught up.") var promote = false

        func run() async throws {
            let result = try await options.admin().add(id: id, peerAddress: peerAddress, clientAddress: clientAddress, promoteWhenCaughtUp: promote)
            print(promote ? (result.promoted ? "node \(id) added, caught up and promoted (index \(result.index))" : "node \(id) added as a learner; it did not catch up in time, promote it later")
                : "node \(id) added as a learner (index \(result.index))")
            MemberCommand.show(result.members)
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "promote", abstract: "Make a learner a voter.")
        @OptionGroup var options: AdminOptions
        @Argument(help: "The learner's id.") var id: UInt64

        func run() async throws {
            let result = try await options.admin().promote(id: id)
            print("node \(id) is a voter (index \(result.index))")
            MemberCommand.show(result.members)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove a member; the leader hands over leadership first when it is the one removed."
        )
        @OptionGroup var options: AdminOptions
        @Argument(help: "The member's id.") var id: UInt64
        @Flag(help: "Remove it even if the voters left have no live majority.") var force = false

        func run() async throws {
            let admin = try options.admin()
            let before = try await admin.members()
            guard before.members.contains(where: { $0.id == id }) else {
                throw ToolError("node \(id) is not a member of this cluster (its members are \(before.members.map { String($0.id) }.joined(separator: ", ")))")
            }
            let voters = before.members.filter(\.voter)
            if voters.count == 1, voters[0].id == id {
                throw ToolError("node \(id) is the cluster's only voter: without it no one could run the cluster. Add another voter first (chorus-tools member add … --promote), then remove node \(id)")
            }
            if before.leaderID == id {
                // The next leader: the most caught-up voter that answers.
                let candidates = before.members.filter { $0.voter && $0.id != id && $0.active }.sorted { $0.matchIndex > $1.matchIndex }
                guard let next = candidates.first else { throw ToolError("node \(id) leads and no other voter answers it: there is no one to hand leadership to; start the other voters, or remove another member first") }
                let moved = try await admin.transferLeadership(to: next.id)
                print("node \(id) led: leadership handed to node \(moved.leader) (term \(moved.term)) in \(moved.milliseconds) ms")
            }
            let result = try await admin.remove(id: id, force: force)
            print("node \(id) removed (index \(result.index)); stop it and keep or wipe its data: it may not come back under this id")
            MemberCommand.show(result.members)
        }
    }
}

/// `chorus-tools transfer-leader --to N`.
struct TransferLeaderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transfer-leader", abstract: "Hand leadership to another voter and wait until it leads.")
    @OptionGroup var options: AdminOptions
    @Option(help: "The voter to lead.") var to: UInt64

    func run() async throws {
        let moved = try await options.admin().transferLeadership(to: to)
        print("node \(moved.leader) leads (term \(moved.term)); the hand-over took \(moved.milliseconds) ms")
    }
}
