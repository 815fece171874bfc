import API
import GRPCCore
import InlineGRPC
import SwiftProtobuf

/// The client API's unary methods, served by the inline transport without GRPCCore's
/// executor (`InlineServerTransport.UnaryHandler`): decode, call the service's own method,
/// encode. Measured on the bare call, GRPCCore's per-call machinery (interceptors, async
/// sequences, writers, generic wrappers) was a third of a node's CPU per call.
///
/// What the interceptors do for the other methods is done here: `RequestMetrics`' counts and
/// times (through a per-method `CallRecorder`, without a lock-and-string per call), and the
/// request limit, which the transport checks from each message's length prefix.
enum UnaryRoutes {
    static func routes(chat: ChatService, health: HealthService, metrics: NodeMetrics) -> [String: InlineServerTransport.UnaryHandler] {
        var routes: [String: InlineServerTransport.UnaryHandler] = [:]
        func add<Request: SwiftProtobuf.Message & Sendable, Response: SwiftProtobuf.Message & Sendable>(
            _ method: MethodDescriptor, _ body: @escaping @Sendable (Request, ServerContext) async throws -> Response
        ) {
            let recorder = metrics.calls(of: method.fullyQualifiedMethod, timed: true)
            routes["/\(method.fullyQualifiedMethod)"] = { bytes, context in
                let started = ContinuousClock.now
                do {
                    let request: Request
                    do {
                        request = try Request(serializedBytes: bytes)
                    } catch {
                        // As GRPCProtobuf's deserializer says it.
                        throw RPCError(code: .invalidArgument, message: "Can't deserialize to message of type \(Request.self).", cause: error)
                    }
                    let answer = try await body(request, context)
                    let response: InlineBytes
                    do {
                        response = try answer.serializedBytes()
                    } catch {
                        throw RPCError(code: .invalidArgument, message: "Can't serialize message of type \(Response.self).", cause: error)
                    }
                    recorder.record("ok", since: started)
                    return response
                } catch where error is RPCError || error is any RPCErrorConvertible {
                    recorder.record(RequestMetrics.code(of: error), since: started)
                    throw error
                } catch {
                    // What GRPCCore's executor answers for an error it does not know, behind
                    // an interceptor as the node's other calls are: UNKNOWN, no message.
                    recorder.record("unknown", since: started)
                    throw RPCError(code: .unknown, message: "", cause: error)
                }
            }
        }
        typealias Chat = Chorus_V1_Chat.Method
        add(Chat.CheckUsername.descriptor, chat.checkUsername)
        add(Chat.CreateAccount.descriptor, chat.createAccount)
        add(Chat.Login.descriptor, chat.login)
        add(Chat.Logout.descriptor, chat.logout)
        add(Chat.ListAccounts.descriptor, chat.listAccounts)
        add(Chat.SendMessage.descriptor, chat.sendMessage)
        add(Chat.ReadUndelivered.descriptor, chat.readUndelivered)
        add(Chat.AcknowledgeMessages.descriptor, chat.acknowledgeMessages)
        add(Chat.History.descriptor, chat.history)
        add(Chat.DeleteMessages.descriptor, chat.deleteMessages)
        add(Chat.EditMessage.descriptor, chat.editMessage)
        add(Chat.DeleteAccount.descriptor, chat.deleteAccount)
        add(Chat.CreateGroup.descriptor, chat.createGroup)
        add(Chat.AddGroupMembers.descriptor, chat.addGroupMembers)
        add(Chat.RemoveGroupMembers.descriptor, chat.removeGroupMembers)
        add(Chat.LeaveGroup.descriptor, chat.leaveGroup)
        add(Chat.RenameGroup.descriptor, chat.renameGroup)
        add(Chat.SetGroupAdmin.descriptor, chat.setGroupAdmin)
        add(Chat.SendGroupMessage.descriptor, chat.sendGroupMessage)
        add(Chat.ListGroups.descriptor, chat.listGroups)
        add(Chat.GroupMembers.descriptor, chat.groupMembers)
        add(Chat.GroupHistory.descriptor, chat.groupHistory)
        add(Chat.ClusterStatus.descriptor, chat.clusterStatus)
        add(Grpc_Health_V1_Health.Method.Check.descriptor, health.check)
        return routes
    }
}

/// Serialized straight into the transport's buffer, after the room it keeps for the gRPC
/// prefix, and parsed from a slice of the DATA frame: no copy either way. (The two protocols
/// ask the same of a type.)
extension InlineBytes: SwiftProtobufContiguousBytes {}
