/// The rules of groups (cluster version 3 on). Like the rest of `Validation` they are part of
/// what the log means: a group command is applied against them on every replica, so changing
/// one is a new cluster version.
extension Validation {
    /// Members of one group, its creator included.
    public static let maxGroupMembers = 1_000
    /// Groups one account may be in.
    public static let maxGroupsPerAccount = 256

    /// Group names follow account names' rules (1–32 of letters, digits, `_`, `.`, `-`); they
    /// are unique among groups, apart from accounts' names.
    /// A name of dots only would be a path segment ("." or "..") in every URL that names the
    /// group: refused.
    public static func groupName(_ name: String) throws(Rejection) {
        try self.name(name, of: "group")
        guard name.utf8.contains(where: { $0 != UInt8(ascii: ".") }) else {
            throw Rejection(.invalidArgument, "the group name '\(name)' needs a letter, a digit, '_' or '-'")
        }
    }

    /// The accounts one group command names: at most `maxGroupMembers`, each a valid name.
    public static func memberNames(_ names: [String], required: Bool) throws(Rejection) {
        if required, names.isEmpty { throw Rejection(.invalidArgument, "no members given") }
        guard names.count <= maxGroupMembers else {
            throw Rejection(.invalidArgument, "\(names.count) members named in one call; a group holds at most \(maxGroupMembers)")
        }
        for name in names { try accountName(name) }
    }
}
