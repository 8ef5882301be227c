package sdk

import "testing"

func TestSettingsKey(t *testing.T) {
	for in, want := range map[string]string{"PinSHA256": "pin-sha256", "HandshakeTimeout": "handshake-timeout", "MaxStreamWindowSize": "max-stream-window-size",
		"IdentityDir": "identity-dir", "MaxConnectionReceiveWindow": "max-connection-receive-window", "DialTimeout": "dial-timeout", "TLS": "tls", "A": "a",
		"ReadLimit": "read-limit", "HTTPPath": "http-path"} {
		if got := SettingsKey(in); got != want {
			t.Errorf("SettingsKey(%s) = %s, want %s", in, got, want)
		}
	}
}
