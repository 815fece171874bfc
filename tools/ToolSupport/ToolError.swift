/// A tool's failure, said as the sentence it prints before exiting non-zero.
public struct ToolError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
