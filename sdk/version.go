package sdk

// ProtocolVersion is the version of the transport contract in this package.
// A plugin built against another ProtocolVersion is refused with
// [ErrIncompatible]. It changes only when the contract breaks.
const ProtocolVersion = 1

// Version is the SDK's semantic version, reported by plugins and by the
// connector's plugins command.
const Version = "1.0.0"
