import ArgumentParser
import Client
import Foundation

struct Register: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create an account and log in to it.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "Account name: 1–32 letters, digits, '_', '.' or '-'.") var name: String

    func run() async throws {
        try await options.run { client, out in
            let password = try readPassword(prompt: "new password for \(name): ")
            try await client.createAccount(name: name, password: password)
            let session = try await client.login(name: name, password: password)
            try SessionFile(name: name, token: session.token).save()
            out.emit("registered and logged in as \(name)", ["name": name, "registered": true])
        }
    }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Log in; shows how many messages wait.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "Account name.") var name: String

    func run() async throws {
        try await options.run { client, out in
            let password = try readPassword(prompt: "password for \(name): ")
            let session = try await client.login(name: name, password: password)
            try SessionFile(name: name, token: session.token).save()
            out.emit("logged in as \(name); \(session.unreadCount) unread", ["name": name, "unread": session.unreadCount])
        }
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End the session.")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await options.run { client, out in
            let session = try SessionFile.load()
            do {
                try await client.logout(token: session.token)
            } catch ChorusError.wrongCredentials {
                // Already ended on the server: forgetting it locally is all that is left.
            }
            SessionFile.remove()
            out.emit("logged out \(session.name)", ["name": session.name, "logged_out": true])
        }
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List accounts matching a pattern (* and ?), with who is online.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "Glob pattern.") var pattern: String = "*"
    @Option(name: .shortAndLong, help: "Accounts per page.") var pageSize: Int = 50
    @Option(help: "Continue from this page token.") var page: String?
    @Flag(help: "Fetch every page.") var all = false

    func run() async throws {
        try await options.run { client, out in
            let session = try SessionFile.load()
            var token = page
            var rows: [(name: String, online: Bool)] = []
            var next: String?
            repeat {
                let result = try await client.listAccounts(token: session.token, pattern: pattern, pageSize: pageSize, pageToken: token)
                rows += result.accounts
                next = result.nextPageToken
                token = next
            } while all && next != nil
            let human = (rows.map { "\($0.online ? "●" : "○") \($0.name)" } + (next.map { ["(more: --page \($0))"] } ?? [])).joined(separator: "\n")
            out.emit(rows.isEmpty ? "no accounts match '\(pattern)'" : human,
                     ["accounts": rows.map { ["name": $0.name, "online": $0.online] }, "next_page": next ?? NSNull()] as [String: Any])
        }
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a message to an account, or to a group as '#NAME'.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "Recipient: an account, or '#GROUP'.") var recipient: String
    @Argument(parsing: .remaining, help: "The message (read from stdin when omitted).") var words: [String] = []

    func run() async throws {
        try await options.run { client, out in
            let session = try SessionFile.load()
            var body = words.joined(separator: " ")
            if body.isEmpty {
                body = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                    .trimmingCharacters(in: .newlines)
            }
            if recipient.hasPrefix("#") {
                let group = Group.name(recipient)
                let id = try await client.sendToGroup(token: session.token, group: group, body: body)
                out.emit("sent #\(id) to #\(group)", ["id": id, "group": group] as [String: Any])
                return
            }
            let id = try await client.send(token: session.token, to: recipient, body: body)
            out.emit("sent #\(id) to \(recipient)", ["id": id, "to": recipient])
        }
    }
}

struct Read: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read the oldest undelivered messages; they become delivered.")
    @OptionGroup var options: GlobalOptions
    @Option(name: .short, help: "How many.") var n: Int = 10

    func run() async throws {
        try await options.run { client, out in
            let session = try SessionFile.load()
            // Shown first, then acknowledged: a failure in between leaves them waiting.
            let result = try await client.readUndelivered(token: session.token, limit: n, acknowledge: false)
            let more = result.unreadCount.subtractingReportingOverflow(UInt64(result.messages.count))
            let unread = more.overflow ? 0 : more.partialValue
            let human = result.messages.isEmpty ? "no new messages"
                : (result.messages.map(Output.line) + ["\(unread) more unread"]).joined(separator: "\n")
            out.emit(human, ["messages": result.messages.map(Output.describe), "unread": unread] as [String: Any])
            if !result.messages.isEmpty { try await client.acknowledge(token: session.token, ids: result.messages.map(\.id)) }
        }
    }
}

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the conversation with another user, or a group's as '#NAME', newest first.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The other user, or '#GROUP'.") var user: String
    @Option(name: .short, help: "Messages per page.") var n: Int = 20
    @Option(help: "Continue from this page token.") var page: String?
    @Flag(help: "Oldest first.") var oldestFirst = false

    func run() async throws {
        try await options.run { client, out in
            let session = try SessionFile.load()
            let result = if user.hasPrefix("#") {
                try await client.groupHistory(token: session.token, group: Group.name(user), pageSize: n, pageToken: page, oldestFirst: oldestFirst)
            } else {
                try await client.history(token: session.token, with: user, pageSize: n, pageToken: page, oldestFirst: oldestFirst)
            }
            let lines = (result.deletedAccount ? ["(\(user) deleted their account; what they wrote stays)"] : [])
                + result.messages.map(Output.line) + (result.nextPageToken.map { ["(more: --page \($0))"] } ?? [])
            out.emit(lines.isEmpty ? "no messages with \(user)" : lines.joined(separator: "\n"),
                     ["messages": result.messages.map(Output.describe), "next_page": result.nextPageToken ?? NSNull()] as [String: Any])
        }
    }
}

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete messages (yours, sent or received) for both sides.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "Message ids.") var ids: [UInt64]

    func run() async throws {
        try await options.run { client, out in
            let session = try SessionFile.load()
            let count = try await client.deleteMessages(token: session.token, ids: ids)
            out.emit("deleted \(count) message\(count == 1 ? "" : "s")", ["deleted": count])
        }
    }
}

struct Edit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Replace the text of a message you sent (both sides see it, marked edited).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The message id.") var id: UInt64
    @Argument(parsing: .remaining, help: "The new text.") var body: [String]

    func run() async throws {
        try await options.run { client, out in
            let session = try SessionFile.load()
            guard !body.isEmpty else { throw CLIError(message: "give the new text after the message id") }
            let edited = try await client.editMessage(token: session.token, id: id, body: body.joined(separator: " "))
            out.emit("edited #\(id)", ["edited": id, "edited_unix_ms": edited])
        }
    }
}

struct DeleteAccount: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete-account", abstract: "Delete your account and its inbox (asks the password again).")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await options.run { client, out in
            let session = try SessionFile.load()
            let password = try readPassword(prompt: "password for \(session.name) (to confirm deletion): ")
            try await client.deleteAccount(token: session.token, password: password)
            SessionFile.remove()
            out.emit("deleted account \(session.name)", ["deleted": session.name])
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show every node's view of the cluster.")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await options.run { client, out in
            let statuses = await client.status()
            var rows = [["NODE", "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED", "REFUSED", "READY", "VERSION", "RELEASE"]]
            var reasons: [String] = []
            for (endpoint, status) in statuses {
                if let s = status {
                    rows.append(["\(s.nodeID)", endpoint, s.role, "\(s.term)", "\(s.commitIndex)", "\(s.appliedIndex)", "\(s.refusedPeerMessages)", s.ready ? "yes" : "no",
                                 "\(s.clusterVersion)/\(s.buildMaxClusterVersion)", s.release.isEmpty ? "before 0.3.0" : s.release])
                    reasons += s.notReady.map { "node \(s.nodeID) not ready: \($0)" }
                } else {
                    rows.append(["?", endpoint, "-", "-", "-", "-", "-", "unreachable", "-", "-"])
                }
            }
            let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
            let table = rows.map { row in
                row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            }.joined(separator: "\n")
            let objects: [[String: Any]] = statuses.map { endpoint, status in
                guard let s = status else { return ["address": endpoint, "healthy": false] }
                return ["node": s.nodeID, "address": endpoint, "role": s.role, "term": s.term, "leader": s.leaderID,
                        "commit": s.commitIndex, "applied": s.appliedIndex, "refused_peer_messages": s.refusedPeerMessages, "healthy": true,
                        "ready": s.ready, "not_ready": s.notReady, "cluster_version": s.clusterVersion,
                        "build_max_cluster_version": s.buildMaxClusterVersion, "release": s.release]
            }
            // The membership as the leader sees it: voters and learners, and how far behind.
            var text = ([table] + reasons).joined(separator: "\n")
            text += "\nVERSION is the cluster version the node applied / the newest its build applies"
            if let leader = statuses.compactMap(\.status).filter({ $0.role == "leader" }).max(by: { $0.term < $1.term }),
               leader.buildMaxClusterVersion > leader.clusterVersion {
                let behind = leader.members.map(\.id).filter { (leader.memberBuilds[$0]?.maxClusterVersion ?? 1) <= leader.clusterVersion }
                text += "\ncluster version \(leader.clusterVersion); it rises once every member runs a newer build (not yet: \(behind.map(String.init).joined(separator: ", ")))"
            }
            var members: [[String: Any]] = []
            if let leader = statuses.compactMap(\.status).filter({ $0.role == "leader" }).max(by: { $0.term < $1.term }) {
                text += "\nmembers (node \(leader.nodeID)'s view as leader):"
                for member in leader.members {
                    let behind = leader.lastIndex >= member.matchIndex ? leader.lastIndex - member.matchIndex : 0
                    let role = member.id == leader.nodeID ? "leader" : member.voter ? "voter" : "learner"
                    let build = leader.memberBuilds[member.id]
                    let runs = build.map { "applies cluster versions up to \($0.maxClusterVersion) (\($0.release.isEmpty ? "a release before 0.3.0" : "release " + $0.release))" } ?? "build not heard from"
                    text += "\n  \(member.id)  \(role.padding(toLength: 7, withPad: " ", startingAt: 0))  \(member.address.isEmpty ? "-" : member.address)  match \(member.matchIndex) (\(behind) behind)  \(runs)"
                    members.append(["id": member.id, "role": role, "address": member.address, "match": member.matchIndex, "behind": behind,
                                    "max_cluster_version": build?.maxClusterVersion ?? 0, "release": build?.release ?? ""])
                }
            }
            out.emit(text, ["nodes": objects, "members": members])
            if statuses.allSatisfy({ $0.status == nil }) {
                throw ChorusError.clusterUnavailable("no node answered at \(options.endpointList.joined(separator: ", "))")
            }
        }
    }
}
