import Crypto
import CryptoExtras

/// Password and token hashing. Only the leader hashes a new password (the salt is random); any
/// replica can verify one, since the salt and round count are stored with the hash.
public enum Credentials {
    /// OWASP's floor for PBKDF2-HMAC-SHA256.
    public static let defaultIterations: UInt32 = 210_000
    public static let saltLength = 16

    /// The PBKDF2 hash, or nil when the parameters cannot be hashed (no rounds, no salt, too
    /// many rounds): a stored row is data from the log and must not crash whoever reads it.
    public static func hashPassword(_ password: String, salt: [UInt8], iterations: UInt32) -> [UInt8]? {
        guard iterations >= 1, iterations <= Validation.maxPasswordIterations, !salt.isEmpty else { return nil }
        // `unsafeUncheckedRounds` lets tests run with few rounds; production passes the default.
        guard let key = try? KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256,
            outputByteCount: 32, unsafeUncheckedRounds: Int(iterations)
        ) else { return nil }
        return key.withUnsafeBytes { Array($0) }
    }

    public static func newSalt() -> [UInt8] {
        randomBytes(saltLength)
    }

    /// A fresh session token: 32 random bytes, given to the client once.
    public static func newToken() -> [UInt8] {
        randomBytes(32)
    }

    /// What the log and the tables hold in place of a token.
    public static func tokenHash(_ token: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: token))
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// Compares without an early exit, so timing does not reveal how much of a hash matched.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
