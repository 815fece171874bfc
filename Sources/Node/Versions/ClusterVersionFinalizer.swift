import Logging
import Projections
import Raft
import Replica
import ServiceLifecycle

/// Raises the cluster version on the leader as soon as every member runs a build that applies
/// a newer one (`ClusterVersionRule`): the last node of a rolling upgrade brings the new
/// version within a second, with nothing for an operator to do.
///
/// Automatic, as etcd's cluster version is, because the leader knows each member's build and
/// the rule never lets the version outrun one: an operator's command would only add a step
/// to forget. The price is the one every such scheme pays: once raised, the version stays, and
/// a build that does not apply it is refused (a downgrade is possible only until then).
struct ClusterVersionFinalizer: Service {
    let replica: ChatReplica
    let versions: PeerVersions
    let logger: Logger
    /// How often the leader looks.
    var interval: Duration = .milliseconds(200)

    func run() async {
        await cancelWhenGracefulShutdown {
            var waitingFor: [NodeID] = []
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard replica.isLeader, versions.build.maxClusterVersion > versions.clusterVersion,
                      let status = try? await replica.status() else { continue }
                let silent = status.members.map(\.id).filter { $0 != status.id && versions.advertised(by: $0) == nil }
                if silent != waitingFor, !silent.isEmpty {
                    logger.info("the cluster version stays \(versions.clusterVersion) until nodes \(silent.map(String.init).joined(separator: ", ")) say which build they run")
                }
                waitingFor = silent
                guard next(status) != nil, versions.begin(.raisingVersion) else { continue }
                defer { versions.end() }
                // The members again, now that none can be added until the raise is applied.
                guard let fresh = try? await replica.status(), let version = next(fresh) else { continue }
                await raise(to: version, members: fresh.members.map(\.id))
            }
        }
    }

    /// The version the rule allows over `status`'s members, if above the applied one.
    private func next(_ status: ReplicaStatus) -> UInt32? {
        ClusterVersionRule.next(committed: versions.clusterVersion, members: status.members.map(\.id), applies: { member in
            member == status.id ? versions.build.maxClusterVersion : versions.advertised(by: member)?.build.maxClusterVersion
        })
    }

    private func raise(to version: UInt32, members: [NodeID]) async {
        var command = Command()
        command.version = ChatState.commandVersion
        command.timestampMs = replica.machine.leaderClock.stamp()
        command.kind = .setClusterVersion(.with { $0.version = version })
        guard let bytes = try? command.serializedBytes() as [UInt8] else { return }
        logger.notice("every member (\(members.map(String.init).joined(separator: ", "))) applies cluster version \(version): proposing it")
        do {
            let applied = try await replica.propose(bytes)
            logger.notice("cluster version \(version) committed at log entry \(applied.index)")
        } catch {
            logger.warning("proposing cluster version \(version) failed: \(error); trying again")
        }
    }
}
