package mfa

import (
	"crypto/subtle"
	"io"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters (RFC 6238 as every authenticator app implements it):
// SHA-1, 6 digits, 30-second steps, one step of clock skew either way.
const (
	totpPeriod = 30
	totpSkew   = 1
	totpDigits = otp.DigitsSix
	totpAlg    = otp.AlgorithmSHA1
	// totpSecretSize is 160 bits, RFC 4226's recommended key length.
	totpSecretSize = 20
)

// newTOTPKey generates a secret for account (the user's email) shown as
// issuer in the authenticator app.
func newTOTPKey(issuer, account string, random io.Reader) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: totpPeriod, SecretSize: totpSecretSize,
		Digits: totpDigits, Algorithm: totpAlg, Rand: random,
	})
}

// step is the RFC 6238 time step of t.
func step(t time.Time) int64 { return t.Unix() / totpPeriod }

// matchStep returns the time step, within one step of now either way, whose
// code is code. pquerna/otp validates without saying which step matched,
// and that is what replay protection needs, so the candidates are computed
// here: every one is compared, in constant time, and the latest match wins.
func matchStep(secret, code string, now time.Time) (int64, bool) {
	if len(code) != int(totpDigits) {
		return 0, false
	}
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: totpAlg}
	var matched int64
	found := 0
	for s := step(now) - totpSkew; s <= step(now)+totpSkew; s++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), opts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched, found = s, 1
		}
	}
	return matched, found == 1
}
