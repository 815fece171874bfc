import ArgumentParser
import Client
import Foundation
import GRPCCore
import LMDB
import Node
import Projections
import Raft
import Replica
import Synchronization
import ToolSupport

/// `chorus-tools backup`: an online backup of a running cluster, and its offline check.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up a running cluster into one file (from a follower by default), or check a backup file.",
        subcommands: [Take.self, Verify.self],
        defaultSubcommand: Take.self
    )

    struct Take: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "take",
            abstract: "Copy the cluster's state at an index that covers every write acknowledged before the command started.",
            discussion: "The node copies its projections in one read transaction while writes go on, once it has applied everything the cluster had committed when asked (a linearizable read). A follower is asked unless --from names a node."
        )
        @OptionGroup var options: AdminOptions
        @Option(help: "The backup file to write.") var out: String
        @Option(help: "The node to take it from (default: a follower that answers).") var from: UInt64?
        @Option(help: "Seconds the whole backup may take.") var timeout: Double = 3_600

        func run() async throws {
            let admin = try options.admin()
            let survey = await admin.survey()
            guard let members = survey.best else { throw ToolError("no node answered: \(survey.silentSummary)") }
            let candidates = survey.answers.filter { answer in
                if let from { return answer.membership.nodeID == from }
                return answer.membership.nodeID != members.leaderID
            }
            guard let source = candidates.first ?? (from == nil ? survey.answers.first : nil) else {
                throw ToolError("node \(from ?? 0) did not answer at the endpoints given (\(survey.silentSummary))")
            }
            let started = ContinuousClock.now
            let scratch = out + ".receiving"
            try? FileManager.default.removeItem(atPath: scratch)
            try FileSystem.makePrivateDirectory(scratch)
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let data = scratch + "/data.mdb"
            // Per mille of the copy received, drawn on a terminal.
            let progress = Mutex(ProgressBar("backup", total: 1_000))
            let header = try await admin.backup(from: source.endpoint, into: data, within: .milliseconds(Int64(timeout * 1_000))) { received, total in
                progress.withLock { $0.update(total == 0 ? 0 : Int(received * 1_000 / total)) }
            }
            progress.withLock { $0.finish() }

            guard FileSystem.size(data) == header.size, BackupFile.hex(try SnapshotInfo.checksum(of: data)) == BackupFile.hex(header.sha256) else {
                throw ToolError("the copy arrived damaged (its size or SHA-256 differ from what node \(header.nodeID) sent); take the backup again")
            }
            let digest: String
            do {
                let state = try ChatState(directory: scratch, readOnly: true)
                let position = try state.position()
                guard position.index == header.index, position.term == header.term else {
                    throw ToolError("the copy is at index \(position.index) (term \(position.term)), not \(header.index) (term \(header.term)) as node \(header.nodeID) said")
                }
                digest = try state.digest()
            }
            try? FileManager.default.removeItem(atPath: scratch + "/lock.mdb")
            let metadata = BackupFile.Metadata(
                cluster: header.clusterID, node: header.nodeID, index: header.index, term: header.term,
                members: BackupFile.members(of: header.configuration), configuration: Data(header.configuration),
                clusterVersion: header.clusterVersion, projectionsFormat: header.projectionsFormat, release: header.release,
                createdAt: ISO8601DateFormatter().string(from: Date()), size: header.size, sha256: BackupFile.hex(header.sha256), digest: digest)
            try BackupFile.write(metadata, data: data, to: out)
            let took = ContinuousClock.now - started
            print("backup of cluster '\(metadata.cluster)' from node \(metadata.node) at index \(metadata.index) (term \(metadata.term)): \(FileSystem.size(out) ?? 0) bytes in \(took.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))), written to \(out); digest \(digest)")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a backup file offline and print what it holds.")
        @Argument(help: "The backup file.") var file: String

        func run() throws {
            let scratch = NSTemporaryDirectory() + "chorus-backup-verify-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let metadata = try BackupFile.open(file, extractingInto: scratch)
            let state = try ChatState(directory: scratch, readOnly: true)
            let position = try state.position()
            guard position.index == metadata.index, position.term == metadata.term else {
                throw ToolError("\(file) is inconsistent: its copy is at index \(position.index) (term \(position.term)), its metadata says \(metadata.index) (term \(metadata.term))")
            }
            let digest = try state.digest()
            guard digest == metadata.digest else {
                throw ToolError("\(file) is inconsistent: the copy's digest is \(digest), its metadata records \(metadata.digest)")
            }
            let counts = try state.counts()
            print("\(file): a whole backup of cluster '\(metadata.cluster)', taken from node \(metadata.node) at \(metadata.createdAt) (release \(metadata.release))")
            print("  index \(metadata.index), term \(metadata.term); cluster version \(metadata.clusterVersion), projections format \(metadata.projectionsFormat)")
            print("  members then: " + metadata.members.map { "\($0.id) (\($0.voter ? "voter" : "learner"), peer \($0.peer))" }.joined(separator: ", "))
            print("  \(counts.users) accounts, \(counts.messages) messages (\(counts.undelivered) undelivered); \(metadata.size) bytes of projections")
            print("  checksums and digest match (\(digest))")
        }
    }
}

/// `chorus-tools restore`: the data directories of a new cluster that starts from a backup.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Prepare the data directories of a new cluster that starts with a backup's content.",
        discussion: "Each --member ID=PEERHOST:PORT[,CLIENTHOST:PORT] gets ROOT/node-ID. The new cluster runs under a new incarnation: nodes of the cluster the backup came from are refused by it. Copy each directory to its machine and start the nodes as usual (no --join)."
    )
    @Argument(help: "The backup file.") var file: String
    @Option(help: "Where to create the data directories (ROOT/node-ID).") var into: String
    @Option(help: "A member of the new cluster: ID=PEERHOST:PORT[,CLIENTHOST:PORT]. Repeat for each.") var member: [String]
    @Option(help: "The new cluster's id (default: the backup's).") var cluster: String?

    func run() throws {
        var members: [NodeID: MemberDirectory.Addresses] = [:]
        for text in member {
            let parts = text.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let id = NodeID(parts[0]), id > 0, let addresses = MemberDirectory.Addresses(context: Array(parts[1].utf8)) else {
                throw ValidationError("--member '\(text)' is not ID=PEERHOST:PORT[,CLIENTHOST:PORT]")
            }
            guard members[id] == nil else { throw ValidationError("--member names node \(id) twice") }
            members[id] = addresses
        }
        guard !members.isEmpty else { throw ValidationError("give the new cluster's members with --member") }
        let scratch = into + "/.restoring"
        try? FileManager.default.removeItem(atPath: scratch)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let metadata = try BackupFile.open(file, extractingInto: scratch)
        let plan = ClusterSeed.Plan(clusterID: cluster ?? metadata.cluster, members: members)
        for id in members.keys.sorted() {
            try ClusterSeed.write("\(into)/node-\(id)", node: id, plan: plan, projections: scratch + "/data.mdb")
        }
        print("restored the backup of cluster '\(metadata.cluster)' at index \(metadata.index) (term \(metadata.term)) into \(members.count) data directories under \(into): " + members.keys.sorted().map { "node-\($0)" }.joined(separator: ", "))
        print("the new cluster '\(plan.clusterID)' runs as incarnation \(plan.clusterIncarnation): nodes of the cluster the backup came from are refused by it")
        print("next: copy each directory to its machine and start each node with --data-dir pointing at it and --cluster-id \(plan.clusterID)~\(plan.clusterIncarnation) (no --join); they elect a leader as after a full restart. Members added later start empty with --join and the same --cluster-id")
    }
}
