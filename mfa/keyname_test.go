package mfa

import (
	"testing"

	"github.com/go-webauthn/webauthn/webauthn"
)

// TestKeyNameDropsInvisibleCharacters: a key's name is shown in pages and
// emails; bidirectional overrides and zero-width characters could make it
// read as something else, so they are removed.
func TestKeyNameDropsInvisibleCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"Blue\u202eyek":   "Blueyek",
		"Yubi\u200bKey\n": "YubiKey",
		"  Work key  ":    "Work key",
		"\u2066\u2069":    "Security key",
		"Clé de sécurité": "Clé de sécurité",
	} {
		if got := keyName(in, &webauthn.Credential{}); got != want {
			t.Errorf("keyName(%q) = %q, want %q", in, got, want)
		}
	}
}
