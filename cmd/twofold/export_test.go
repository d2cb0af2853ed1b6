package main

import (
	"crypto/sha256"
	"encoding/hex"
)

// consentDigest mirrors consent's rate-limit key for an email, so a test
// can lift a throttle the way its expiry would.
func consentDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
