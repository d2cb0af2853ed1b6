// Package mfatest holds what the security-key tests of several packages
// share: a software credential that go-webauthn accepts every time.
package mfatest

import (
	"crypto/ecdsa"
	"crypto/x509"

	"github.com/descope/virtualwebauthn"
)

// NewCredential makes a P-256 credential for descope/virtualwebauthn whose
// public key it encodes correctly. virtualwebauthn writes the COSE key's
// coordinates with big.Int.Bytes, which drops leading zero bytes, so about
// one key in 128 would carry a 31-byte coordinate that go-webauthn rightly
// refuses and a test would fail at random. Such keys are drawn again.
func NewCredential() virtualwebauthn.Credential {
	for {
		c := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeEC2)
		priv, err := x509.ParsePKCS8PrivateKey(c.Key.Data)
		if err != nil {
			panic(err)
		}
		point, err := priv.(*ecdsa.PrivateKey).PublicKey.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		if point[1] != 0 && point[33] != 0 {
			return c
		}
	}
}
