import Testing
@testable import Raft

/// Configurations and changes travel in log entries, snapshots and peer messages: they round
/// trip, old encodings (no contexts) still read, and hostile bytes are refused, not trusted.
@Suite struct ConfigurationEncodingTests {
    @Test func configurationsRoundTripWithAndWithoutContexts() throws {
        let plain = ClusterConfiguration(voters: [1, 2, 3], learners: [4])
        #expect(ClusterConfiguration(encoded: plain.encoded()) == plain)
        let withContexts = ClusterConfiguration(voters: [1, 2], learners: [9], contexts: [1: Array("a:1".utf8), 9: Array("b:2".utf8), 5: [1]])
        #expect(withContexts.contexts[5] == nil, "a context of no member is dropped")
        #expect(ClusterConfiguration(encoded: withContexts.encoded()) == withContexts)
    }

    @Test func changesCarryTheirContextIntoTheConfiguration() {
        var configuration = ClusterConfiguration(voters: [1])
        configuration = configuration.applying(ConfigurationChange(.addLearner, 2, context: Array("peer2".utf8)))
        #expect(configuration.learners == [2])
        #expect(configuration.contexts[2] == Array("peer2".utf8))
        configuration = configuration.applying(ConfigurationChange(.addVoter, 2))
        #expect(configuration.voters == [1, 2])
        #expect(configuration.contexts[2] == Array("peer2".utf8), "a promotion keeps the addresses")
        configuration = configuration.applying(ConfigurationChange(.remove, 2))
        #expect(configuration.members == [1])
        #expect(configuration.contexts[2] == nil)
        let change = ConfigurationChange(.addVoter, 7, context: Array("x".utf8))
        #expect(ConfigurationChange(encoded: change.encoded()) == change)
        #expect(ConfigurationChange(encoded: [1, 0, 0, 0, 0, 0, 0, 0, 7]) == ConfigurationChange(.addVoter, 7), "the old encoding")
    }

    @Test func hostileEncodingsAreRefused() {
        // A count far beyond the bytes given, a context longer than allowed, trailing bytes.
        #expect(ClusterConfiguration(encoded: [0xFF, 0xFF, 0xFF, 0xFF]) == nil)
        var long = ClusterConfiguration(voters: [1]).encoded()
        long += [0, 0, 0, 1] + [0, 0, 0, 0, 0, 0, 0, 1] + [0, 0, 0x10, 0x00] + [UInt8](repeating: 0, count: 4096)
        #expect(ClusterConfiguration(encoded: long) == nil)
        #expect(ClusterConfiguration(encoded: ClusterConfiguration(voters: [1]).encoded() + [0]) == nil)
        #expect(ConfigurationChange(encoded: [1, 0, 0, 0, 0, 0, 0, 0, 7] + [UInt8](repeating: 1, count: 2000)) == nil)
        #expect(ConfigurationChange(encoded: [9, 0, 0, 0, 0, 0, 0, 0, 7]) == nil)
    }
}
