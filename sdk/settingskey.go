package sdk

import (
	"strings"
	"unicode"
)

// SettingsKey is the settings key of a transport Config field: the name
// an operator writes under transports.<name> in the connector's settings
// file, and, upper-cased with dashes as underscores, in its environment
// variable. PinSHA256 is pin-sha256, MaxStreamWindowSize is
// max-stream-window-size, ReadLimit is read-limit. The built-in
// transports and plugins (sdk/plugin's Settings.Decode) both follow it.
func SettingsKey(field string) string {
	rs := []rune(field)
	var b strings.Builder
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('-')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
