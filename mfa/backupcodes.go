package mfa

import (
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Backup codes are 15 symbols of Crockford's base32 alphabet (75 bits,
// above the 64 DESIGN.md asks for), shown as xxxxx-xxxxx-xxxxx. The
// alphabet has no I, L, O or U; input is read leniently (case, spaces and
// hyphens ignored, i and l read as 1, o as 0) so a code copied by hand
// still works.
const (
	backupAlphabet   = "0123456789abcdefghjkmnpqrstvwxyz"
	backupCodeLen    = 15
	backupCodeGroups = 5
	// BackupCodeCount is how many codes a user gets at a time.
	BackupCodeCount = 10
)

// newBackupCodes returns n fresh codes in canonical (unformatted) form.
func newBackupCodes(random io.Reader, n int) ([]string, error) {
	buf := make([]byte, backupCodeLen*n)
	if _, err := io.ReadFull(random, buf); err != nil {
		return nil, err
	}
	codes := make([]string, n)
	for i := range codes {
		var b strings.Builder
		for _, c := range buf[i*backupCodeLen : (i+1)*backupCodeLen] {
			b.WriteByte(backupAlphabet[c&31]) // 256 is a multiple of 32: uniform
		}
		codes[i] = b.String()
	}
	return codes, nil
}

// formatBackupCode shows a canonical code as xxxxx-xxxxx-xxxxx.
func formatBackupCode(code string) string {
	var parts []string
	for i := 0; i < len(code); i += backupCodeGroups {
		parts = append(parts, code[i:min(i+backupCodeGroups, len(code))])
	}
	return strings.Join(parts, "-")
}

// normalizeCode reads what the user typed into the second-factor field. It
// returns the canonical TOTP code (6 digits) or backup code (15 symbols),
// and which one it is; ok is false for anything else.
func normalizeCode(input string) (code string, isBackup, ok bool) {
	if len(input) > 64 {
		return "", false, false
	}
	var b strings.Builder
	for _, r := range input {
		// Non-ASCII is refused before case is folded: Unicode digits, and
		// look-alikes such as the Kelvin sign, which strings.ToLower would
		// turn into an ASCII k.
		if r >= utf8.RuneSelf {
			return "", false, false
		}
		r = unicode.ToLower(r)
		switch {
		case r == ' ' || r == '-' || r == '\t':
			continue
		case r == 'i' || r == 'l':
			r = '1'
		case r == 'o':
			r = '0'
		}
		if !strings.ContainsRune(backupAlphabet, r) {
			return "", false, false
		}
		b.WriteRune(r)
	}
	code = b.String()
	switch {
	case len(code) == int(totpDigits) && strings.Trim(code, "0123456789") == "":
		return code, false, true
	case len(code) == backupCodeLen:
		return code, true, true
	}
	return "", false, false
}
