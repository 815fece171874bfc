import ArgumentParser
import Client
import Foundation

/// `chorus chat`: an interactive session with a live feed.
struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Interactive chat: log in or register, then a live feed and /commands.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "Account name (asked for when omitted).") var name: String?

    static let help = """
        commands:
          @USER TEXT             send TEXT to USER (same as /send USER TEXT)
          #GROUP TEXT            send TEXT to a group you are in (same as /send #GROUP TEXT)
          /read [N]              read the N oldest undelivered messages (default 10)
          /history USER [N]      the last N messages with USER (#GROUP: the group's)
          /groups                your groups, with unread messages in each
          /members #GROUP        a group's members: ● online, ★ admin
          /group create NAME [MEMBER...] | add #G MEMBER... | remove #G MEMBER...
                 | leave #G | rename #G NEW | admin #G MEMBER | unadmin #G MEMBER
          /users [PATTERN]       accounts matching PATTERN (* and ?), ● = online
          /edit ID TEXT          replace the text of a message you sent
          /delete ID...          delete messages for both sides
          /status                the cluster's nodes
          /logout                end the session and quit
          /delete-account        delete this account (asks the password) and quit
          /help                  this list
          /quit                  leave (the session stays valid)
        """

    func run() async throws {
        let lines = LineReader()
        try await options.run { client, _ in
            let session = try await signIn(client, lines)
            say("logged in as \(session.name); \(session.unreadCount) unread. Type /help for commands.")
            let feed = Task { await follow(client, token: session.token) }
            defer { feed.cancel() }
            while let line = await lines.next(prompt: "> ") {
                do {
                    if try await handle(line.trimmingCharacters(in: .whitespaces), client, session, lines) == false { break }
                } catch let error as ChorusError {
                    say("! \(error.description)")
                } catch let error as CLIError {
                    say("! \(error.message)")
                }
            }
        }
    }

    /// Logs in, offering to register a name that does not exist yet.
    func signIn(_ client: ChorusClient, _ lines: LineReader) async throws -> Session {
        var user = name
        while user?.isEmpty ?? true {
            guard let entered = await lines.next(prompt: "name: ") else { throw CLIError(message: "no name given") }
            user = entered.trimmingCharacters(in: .whitespaces)
        }
        let name = user!
        let (available, reason) = try await client.checkUsername(name)
        if available {
            guard let answer = await lines.next(prompt: "'\(name)' is free; register it? [y/N] "), answer.lowercased().hasPrefix("y") else {
                throw CLIError(message: "no account named \(name)")
            }
            let password = try await readPassword(prompt: "new password: ", from: lines)
            try await client.createAccount(name: name, password: password)
            let session = try await client.login(name: name, password: password)
            try SessionFile(name: name, token: session.token).save()
            return session
        }
        if let reason, reason.contains("may only") || reason.contains("empty") || reason.contains("longer") {
            throw CLIError(message: reason)
        }
        let password = try await readPassword(prompt: "password for \(name): ", from: lines)
        let session = try await client.login(name: name, password: password)
        try SessionFile(name: name, token: session.token).save()
        return session
    }

    /// Prints live events until cancelled.
    func follow(_ client: ChorusClient, token: String) async {
        var reconnecting = false
        do {
            for try await event in client.subscribe(token: token) {
                switch event {
                case .attached(let unread):
                    if reconnecting { say("… reconnected to the new leader (\(unread) unread)") }
                    reconnecting = false
                case .message(let message):
                    if let group = message.group {
                        say("← \(message.sender) in #\(group): \(message.body)  (#\(message.id))")
                    } else {
                        say("← \(message.sender): \(message.body)  (#\(message.id))")
                    }
                case .groupChanged(let message):
                    say("… #\(message.group ?? "?"): \(message.change.map { Output.sentence($0, by: message.sender) } ?? "changed")")
                case .messagesDeleted(let ids):
                    say("… deleted: \(ids.map { "#\($0)" }.joined(separator: ", "))")
                case .messageEdited(let message):
                    say("… edited #\(message.id) (\(message.sender)): \(message.body)")
                case .accountCreated(let name):
                    say("… \(name) joined")
                case .accountDeleted(let name):
                    say("… \(name) left")
                case .presence:
                    break
                case .reconnecting(let reason):
                    if !reconnecting { say("… lost the leader (\(reason)); failing over to a new one") }
                    reconnecting = true
                }
            }
        } catch {
            say("! live feed stopped: \(error)")
        }
    }

    /// Runs one line; false to leave.
    func handle(_ line: String, _ client: ChorusClient, _ session: Session, _ lines: LineReader) async throws -> Bool {
        guard !line.isEmpty else { return true }
        var words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        if line.hasPrefix("@") {
            words = ["/send", String(words[0].dropFirst())] + words.dropFirst()
        } else if line.hasPrefix("#") {
            words = ["/send"] + words
        }
        switch words[0] {
        case "/help":
            say(Self.help)
        case "/quit", "/exit":
            return false
        case "/send":
            guard words.count >= 3 else { throw CLIError(message: "usage: /send USER TEXT, or /send #GROUP TEXT") }
            let body = words[2...].joined(separator: " ")
            let id = if words[1].hasPrefix("#") {
                try await client.sendToGroup(token: session.token, group: Group.name(words[1]), body: body)
            } else {
                try await client.send(token: session.token, to: words[1], body: body)
            }
            say("→ \(words[1])  (#\(id))")
        case "/read":
            let n = words.count > 1 ? Int(words[1]) ?? 10 : 10
            // Shown first, then acknowledged: a failure in between leaves them waiting.
            let result = try await client.readUndelivered(token: session.token, limit: n, acknowledge: false)
            result.messages.forEach { say(Output.line($0)) }
            let more = result.unreadCount.subtractingReportingOverflow(UInt64(result.messages.count))
            say(result.messages.isEmpty ? "no new messages" : "\(more.overflow ? 0 : more.partialValue) more unread")
            if !result.messages.isEmpty { try await client.acknowledge(token: session.token, ids: result.messages.map(\.id)) }
        case "/history":
            guard words.count >= 2 else { throw CLIError(message: "usage: /history USER [N]") }
            let n = words.count > 2 ? Int(words[2]) ?? 20 : 20
            let page = if words[1].hasPrefix("#") {
                try await client.groupHistory(token: session.token, group: Group.name(words[1]), pageSize: n)
            } else {
                try await client.history(token: session.token, with: words[1], pageSize: n)
            }
            page.messages.reversed().forEach { say(Output.line($0)) }
            if page.messages.isEmpty { say("no messages with \(words[1])") }
        case "/groups":
            let groups = try await client.groups(token: session.token)
            say(groups.isEmpty ? "you are in no group" : groups.map { "#\($0.name)  \($0.memberCount) members\($0.admin ? ", admin" : "")\($0.unreadCount > 0 ? ", \($0.unreadCount) unread" : "")" }.joined(separator: "\n"))
        case "/members":
            guard words.count == 2 else { throw CLIError(message: "usage: /members #GROUP") }
            let members = try await client.groupMembers(token: session.token, group: Group.name(words[1]))
            say(members.map { "\($0.online ? "●" : "○") \($0.name)\($0.admin ? " ★" : "")" }.joined(separator: "\n"))
        case "/group":
            try await group(Array(words.dropFirst()), client, session)
        case "/users":
            let page = try await client.listAccounts(token: session.token, pattern: words.count > 1 ? words[1] : "*", pageSize: 100)
            say(page.accounts.map { "\($0.online ? "●" : "○") \($0.name)" }.joined(separator: "\n"))
        case "/edit":
            guard words.count >= 3, let id = UInt64(words[1].trimmingCharacters(in: CharacterSet(charactersIn: "#"))) else {
                throw CLIError(message: "usage: /edit ID TEXT")
            }
            try await client.editMessage(token: session.token, id: id, body: words[2...].joined(separator: " "))
            say("edited #\(id)")
        case "/delete":
            let ids = words.dropFirst().compactMap { UInt64($0.trimmingCharacters(in: CharacterSet(charactersIn: "#"))) }
            guard !ids.isEmpty else { throw CLIError(message: "usage: /delete ID...") }
            let count = try await client.deleteMessages(token: session.token, ids: ids)
            say("deleted \(count)")
        case "/status":
            for (endpoint, status) in await client.status() {
                say(status.map { "node \($0.nodeID) \(endpoint) \($0.role) term \($0.term) commit \($0.commitIndex) applied \($0.appliedIndex)" } ?? "\(endpoint) not answering")
            }
        case "/logout":
            try await client.logout(token: session.token)
            SessionFile.remove()
            say("logged out")
            return false
        case "/delete-account":
            let password = try await readPassword(prompt: "password (to confirm deletion): ", from: lines)
            try await client.deleteAccount(token: session.token, password: password)
            SessionFile.remove()
            say("account \(session.name) deleted")
            return false
        default:
            say("unknown command \(words[0]); /help lists them")
        }
        return true
    }
}

extension Chat {
    /// `/group create|add|remove|leave|rename|admin|unadmin …`.
    func group(_ words: [String], _ client: ChorusClient, _ session: Session) async throws {
        let usage = CLIError(message: "usage: /group create NAME [MEMBER...] | add #G MEMBER... | remove #G MEMBER... | leave #G | rename #G NEW | admin #G MEMBER | unadmin #G MEMBER")
        guard words.count >= 2 else { throw usage }
        let (verb, group, rest) = (words[0], Group.name(words[1]), Array(words.dropFirst(2)))
        switch (verb, rest.count) {
        case ("create", _):
            try await client.createGroup(token: session.token, name: group, members: rest)
            say("created #\(group)")
        case ("add", 1...):
            say("added \(try await client.addGroupMembers(token: session.token, group: group, members: rest)) to #\(group)")
        case ("remove", 1...):
            say("removed \(try await client.removeGroupMembers(token: session.token, group: group, members: rest)) from #\(group)")
        case ("leave", 0):
            try await client.leaveGroup(token: session.token, group: group)
            say("left #\(group)")
        case ("rename", 1):
            try await client.renameGroup(token: session.token, group: group, to: Group.name(rest[0]))
            say("#\(group) is now #\(Group.name(rest[0]))")
        case ("admin", 1), ("unadmin", 1):
            try await client.setGroupAdmin(token: session.token, group: group, member: rest[0], admin: verb == "admin")
            say(verb == "admin" ? "\(rest[0]) is an admin of #\(group)" : "\(rest[0]) is no longer an admin of #\(group)")
        default:
            throw usage
        }
    }
}

/// Prints a line at once (the feed and the prompt share the terminal).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// Reads standard input line by line on a thread of its own, so the live feed keeps printing
/// while the user types.
final class LineReader: Sendable {
    private let lines: AsyncStream<String>

    init() {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        lines = stream
        Thread.detachNewThread {
            while let line = readLine(strippingNewline: true) {
                continuation.yield(line)
            }
            continuation.finish()
        }
    }

    func next(prompt: String) async -> String? {
        FileHandle.standardOutput.write(Data(prompt.utf8))
        var iterator = lines.makeAsyncIterator()
        return await iterator.next()
    }
}
